"""Seconds per message of `smtpcli explain --mailbox` on a Maildir of the real-bounce corpus.

    python benchmarks/explain_mailbox.py [--copies 5] [--runs 3]

Builds a Maildir in a temporary folder from ../shared/corpora/bounces (every .eml, repeated
--copies times so the run is long enough to time), then runs the console script once per run
(one process for the whole mailbox, as a user would) with --json, and reports the median wall
and CPU time per message. Target (issue 13): <= 0.05 s per message. It also prints the corpus
figures (enhanced / cause / records right) that tests/test_explain_corpus.py asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpora" / "bounces"
TARGET = 0.05


def build_maildir(root: Path, copies: int) -> int:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    count = 0
    for copy in range(copies):
        for eml in sorted(CORPUS.glob("*.eml")):
            shutil.copyfile(eml, root / "cur" / f"{copy}.{eml.stem}:2,S")
            count += 1
    return count


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(f"corpus not found at {CORPUS}", file=sys.stderr)
        return 2
    exe = str(Path(sys.executable).with_name("smtpcli"))
    env = {**os.environ, "NO_COLOR": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        box = Path(tmp) / "bounces"
        count = build_maildir(box, args.copies)
        walls, cpus = [], []
        summary: dict[str, object] = {}
        for _ in range(args.runs):
            cpu0, t0 = _children_cpu(), time.perf_counter()
            proc = subprocess.run([exe, "explain", "--mailbox", str(box), "--json"],
                                  capture_output=True, env=env, check=True)
            walls.append(time.perf_counter() - t0)
            cpus.append(_children_cpu() - cpu0)
            summary = json.loads(proc.stdout.splitlines()[-1])
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    per_msg = wall / count
    print(f"messages: {count} ({args.copies} copies of {count // args.copies}), "
          f"runs: {args.runs}")
    print(f"wall: {wall:.2f} s = {per_msg * 1000:.2f} ms/message "
          f"({'within' if per_msg <= TARGET else 'OVER'} the {TARGET * 1000:.0f} ms target); "
          f"CPU {cpu / count * 1000:.2f} ms/message")
    print(f"summary: {summary['bounces']} bounces, {summary['records']} records, "
          f"{summary['skipped']} skipped, {summary['malformed']} malformed")
    sys.path.insert(0, str(REPO))
    from tests.test_explain_corpus import figures, run_corpus

    figs = figures(run_corpus())
    print(f"corpus: enhanced {figs['enhanced']:.1f}% of {figs['n_enhanced']} records, cause "
          f"{figs['cause']:.1f}% of {figs['n_cause']}, records right for {figs['emails']:.1f}% "
          f"of {figs['n_emails']} emails")
    return 0 if per_msg <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
