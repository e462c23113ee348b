"""`smtpcli check-domain` over many generated domains: memory and CPU per domain stay flat.

    .venv/bin/python benchmarks/check_domain_batch.py [--sizes 1000,5000,20000] [--delay 0.05]

For each size N, generates N domains (MX, SPF with an include, DMARC, TLS-RPT, a DKIM key at
selector1; a reverse zone for the MX hosts), serves them from the loopback DNS fixture with
--delay per answer, and runs `smtpcli check-domain --from-file LIST --json --no-dnsbl` in a
subprocess whose resident memory is sampled every 0.2 s (/proc). Prints per size: wall time,
domains/s, CPU (user + system) per domain, peak RSS, and RSS at 25/50/75/100 % of the run (flat
means streaming works). Then, at the smallest size, the same run with --no-common-selectors:
the share of questions, wall time and CPU that the 16 common-selector DKIM probes take.
Targets (issue 17): peak RSS < 150 MiB at 100,000 domains, CPU per domain flat.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from check_domain import FixedPortServer, generated_zone  # noqa: E402

from tests.servers.dns_fixture import load_zone  # noqa: E402

SMTPCLI = str(Path(sys.executable).with_name("smtpcli"))
REVERSE = "$TTL 300\n10 IN PTR mx1.bench.test.\n11 IN PTR mx2.bench.test.\n"


def _rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run_batch(listing: str, ns: str, count: int, extra: list[str],
              concurrency: int) -> dict[str, object]:
    """One run: wall, CPU, RSS samples (progress fraction from the output lines so far)."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as out:
        path = out.name
    cmd = [SMTPCLI, "check-domain", "--from-file", listing, "--nameserver", ns, "--no-dnsbl",
           "--json", "--concurrency", str(concurrency), "--timeout", "10", *extra]
    samples: list[tuple[float, int]] = []  # (fraction done, RSS KiB)
    t0 = time.perf_counter()
    with open(path, "wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.DEVNULL)
        while True:
            # wait4 (not Popen.poll) reaps the child with its own CPU times.
            pid, _, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            rss = _rss_kib(proc.pid)
            if rss is not None:
                with open(path, "rb") as fh:
                    done = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
                samples.append((done / count, rss))
            time.sleep(0.2)
        proc.returncode = 0  # reaped above
    wall = time.perf_counter() - t0
    with open(path, "rb") as fh:
        lines = [json.loads(line) for line in fh]
    os.unlink(path)
    cpu = usage.ru_utime + usage.ru_stime

    def rss_at(frac: float) -> float:
        seen = [r for f, r in samples if f <= frac] or [samples[0][1] if samples else 0]
        return max(seen) / 1024

    return {"domains": count, "results": len(lines), "wall_s": round(wall, 2),
            "domains_per_s": round(count / wall, 1), "cpu_ms_per_domain": round(cpu / count * 1000, 2),
            "peak_rss_mib": round(max((r for _, r in samples), default=0) / 1024, 1),
            "rss_mib_at": {f"{int(f * 100)}%": round(rss_at(f), 1) for f in (0.25, 0.5, 0.75, 1.0)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,5000,20000")
    ap.add_argument("--delay", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=50)
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs; DNS fixture in this "
          f"process, {args.delay * 1000:.0f} ms per answer; --concurrency {args.concurrency}")
    t = time.perf_counter()
    zones = [load_zone(generated_zone(max(sizes))), load_zone(REVERSE, "0.0.127.in-addr.arpa.")]
    print(f"zone of {max(sizes)} domains loaded in {time.perf_counter() - t:.1f} s")
    server = FixedPortServer(zones, delay=args.delay, fixed_port=0)
    counter: collections.Counter[str] = collections.Counter()

    class Count(list):  # type: ignore[type-arg]
        """Counts questions by kind instead of keeping every one (millions in a big run)."""

        def append(self, q: object) -> None:
            # No --dkim-selector is given: every _domainkey question is a common-name probe.
            name = str(getattr(q, "qname", ""))
            counter["dkim-common" if "._domainkey." in name else "other"] += 1

    server.queries = Count()  # type: ignore[assignment]
    server.start()
    ns = server.nameserver
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            listing = os.path.join(tmp, f"{size}.txt")
            Path(listing).write_text("\n".join(f"d{i}.bench.test" for i in range(size)) + "\n")
            counter.clear()
            row = run_batch(listing, ns, size, [], args.concurrency)
            row["questions_per_domain"] = round(sum(counter.values()) / size, 1)
            rows.append(row)
            print(json.dumps(row))
        small = sizes[0]
        listing = os.path.join(tmp, f"{small}.txt")
        counter.clear()
        full = run_batch(listing, ns, small, [], args.concurrency)
        dkim_q, counter_before = counter["dkim-common"], sum(counter.values())
        counter.clear()
        lean = run_batch(listing, ns, small, ["--no-common-selectors"], args.concurrency)
    server.stop()
    print(f"\n{'domains':>8} {'wall s':>8} {'dom/s':>7} {'cpu ms/dom':>10} {'q/dom':>6} "
          f"{'peak MiB':>9}  RSS MiB at 25/50/75/100 %")
    for r in rows:
        at = r["rss_mib_at"]
        print(f"{r['domains']:>8} {r['wall_s']:>8} {r['domains_per_s']:>7} "
              f"{r['cpu_ms_per_domain']:>10} {r['questions_per_domain']:>6} {r['peak_rss_mib']:>9}"
              f"  {' / '.join(str(v) for v in at.values())}")  # type: ignore[union-attr]
    share_q = dkim_q / counter_before if counter_before else 0.0
    share_wall = 1 - float(lean["wall_s"]) / float(full["wall_s"])  # type: ignore[arg-type]
    share_cpu = 1 - float(lean["cpu_ms_per_domain"]) / float(full["cpu_ms_per_domain"])  # type: ignore[arg-type]
    print(f"\n16 common-selector DKIM probes at {small} domains: {share_q:.0%} of the questions, "
          f"{share_wall:.0%} of the wall time, {share_cpu:.0%} of the CPU "
          f"(--no-common-selectors: {lean['wall_s']} s vs {full['wall_s']} s)")
    print(json.dumps({"benchmark": "check-domain-batch", "rows": rows,
                      "dkim_common_share": {"questions": round(share_q, 3),
                                            "wall": round(share_wall, 3),
                                            "cpu": round(share_cpu, 3)}}))


if __name__ == "__main__":
    main()
