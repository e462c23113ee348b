"""`smtpcli check-domain` over many generated domains: memory and CPU per domain stay flat.

    .venv/bin/python benchmarks/check_domain_batch.py [--sizes 1000,10000,100000]
        [--server auto|nsd|fixture] [--delay 0.05] [--concurrency 50]
        [--compare N | --resume-check N]

For each size N, generates N domains (MX, SPF with an include, DMARC, TLS-RPT, a DKIM key at
selector1; a reverse zone for the MX hosts), serves them on 127.0.0.1 and runs ONE
`smtpcli check-domain --from-file LIST --json --no-dnsbl --concurrency C` per size, sampling
that process's resident memory and CPU time every 0.2 s (/proc). Prints per size: wall time,
domains/s, CPU (user + system) per domain overall and per quarter of the run, peak RSS, RSS at
25/50/75/100 % of the run, and the load average. Then, at the smallest size, the same run with
--no-common-selectors: the share of questions, wall time and CPU of the 16 DKIM probes.

The zone is served by NSD (`apt-get install -y nsd`; see native_dns.py) when it is installed:
the Python DNS fixture answers only 12 to 18 of these domains a second, which would make a
100,000-domain run take hours and measure the fixture. Without NSD (or with --server fixture)
the fixture serves them, with --delay per answer. `--compare N` checks N domains against both
servers and reports whether every JSON result is the same (they must be: same zone text).
`--resume-check N` interrupts a run over N domains with SIGINT part way, resumes it with
--resume, and checks the output against an uninterrupted run (each domain once, same results).
Targets (issue 17): peak RSS < 150 MiB at 100,000 domains, CPU per domain flat.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import native_dns  # noqa: E402
from check_domain import FixedPortServer, generated_zone  # noqa: E402

from tests.servers.dns_fixture import load_zone  # noqa: E402

SMTPCLI = str(Path(sys.executable).with_name("smtpcli"))
REVERSE = "$TTL 300\n10 IN PTR mx1.bench.test.\n11 IN PTR mx2.bench.test.\n"
TICK = os.sysconf("SC_CLK_TCK")


def zones_text(count: int) -> dict[str, str]:
    return {"bench.test.": generated_zone(count), "0.0.127.in-addr.arpa.": REVERSE}


def serve(kind: str, count: int, delay: float) -> tuple[Any, str]:
    """Start the server for ``count`` domains; (server with .nameserver and .stop(), label)."""
    zones = zones_text(count)
    if kind == "nsd":
        version = subprocess.run([str(native_dns.NSD), "-v"], capture_output=True,
                                 text=True).stderr.split("\n", 1)[0].strip()
        return native_dns.NsdServer(zones).start(), f"{version} (native, no added delay)"
    loaded = [load_zone(text, origin) for origin, text in zones.items()]
    server = FixedPortServer(loaded, delay=delay, fixed_port=0).start()
    return server, f"Python DNS fixture in this process, {delay * 1000:.0f} ms per answer"


def _proc_sample(pid: int) -> tuple[int, int, int] | None:
    """(RSS KiB, user + system CPU ticks, peak RSS KiB) of a running process, from /proc.

    The peak is VmHWM, which starts again at exec: wait4's ru_maxrss would include the
    forked copy of this (bigger) benchmark process before smtpcli was exec'd."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            mem = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in fh)
                   if k in ("VmRSS", "VmHWM")}
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        # utime, stime (fields 14 and 15 of proc(5))
        return mem["VmRSS"], int(fields[11]) + int(fields[12]), mem["VmHWM"]
    except (OSError, KeyError, IndexError, ValueError):
        return None


def run_batch(listing: str, ns: str, count: int, extra: list[str], concurrency: int,
              keep: str | None = None) -> dict[str, Any]:
    """One process over ``listing``: wall, CPU, RSS and load samples by fraction done."""
    path = keep or tempfile.mkstemp(suffix=".jsonl")[1]
    cmd = [SMTPCLI, "check-domain", "--from-file", listing, "--nameserver", ns, "--no-dnsbl",
           "--json", "--concurrency", str(concurrency), "--timeout", "10", *extra]
    samples: list[tuple[float, int, int]] = []  # (fraction done, RSS KiB, CPU ticks)
    peak = 0
    loads: list[float] = []
    done = questions = 0
    targets: set[str] = set()
    partial = b""

    def read_new(fh: Any) -> None:
        """Count the lines written since the last call (the output is never read twice)."""
        nonlocal done, questions, partial
        data = partial + fh.read()
        *lines, partial = data.split(b"\n")
        for line in lines:
            doc = json.loads(line)
            done += 1
            targets.add(doc["target"])
            questions += doc.get("facts", {}).get("dns_questions", 0)

    t0 = time.perf_counter()
    with open(path, "wb") as sink, open(path, "rb") as reader:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.DEVNULL)
        while True:
            # wait4 (not Popen.poll) reaps the child with its own CPU times.
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            sample = _proc_sample(proc.pid)
            read_new(reader)
            if sample is not None:
                samples.append((done / count, *sample[:2]))
                peak = max(peak, sample[2])
            loads.append(os.getloadavg()[0])
            time.sleep(0.2)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        read_new(reader)
    if not keep:
        os.unlink(path)
    cpu = usage.ru_utime + usage.ru_stime

    def rss_at(frac: float) -> float:
        seen = [r for f, r, _ in samples if f <= frac] or [samples[0][1] if samples else 0]
        return max(seen) / 1024

    def cpu_quarters() -> list[float]:
        """CPU ms per domain in each quarter of the run (flat CPU: four equal figures)."""
        out = []
        for lo, hi in ((0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.01)):
            part = [(f, c) for f, _, c in samples if lo <= f < hi]
            if len(part) < 2 or part[-1][0] == part[0][0]:
                out.append(float("nan"))
                continue
            (f0, c0), (f1, c1) = part[0], part[-1]
            out.append(round((c1 - c0) / TICK * 1000 / ((f1 - f0) * count), 2))
        return out

    return {"domains": count, "results": done, "distinct_targets": len(targets),
            "exit_code": proc.returncode, "wall_s": round(wall, 2),
            "domains_per_s": round(count / wall, 1),
            "cpu_ms_per_domain": round(cpu / count * 1000, 2),
            "cpu_ms_per_domain_by_quarter": cpu_quarters(),
            "questions_per_domain": round(questions / count, 1),
            "peak_rss_mib": round(peak / 1024, 1),
            "rss_mib_at": {f"{int(f * 100)}%": round(rss_at(f), 1) for f in (0.25, 0.5, 0.75, 1.0)},
            "load_avg_1min": {"min": min(loads, default=0.0),
                              "median": round(statistics.median(loads), 2) if loads else 0.0,
                              "max": max(loads, default=0.0)}}


def _strip_timings(value: Any) -> Any:
    """A result without anything that depends on the clock (none today; kept for safety)."""
    if isinstance(value, dict):
        return {k: _strip_timings(v) for k, v in value.items()
                if not any(t in k for t in ("elapsed", "duration", "_ms", "seconds", "time"))}
    if isinstance(value, list):
        return [_strip_timings(v) for v in value]
    return value


def compare(count: int, delay: float, concurrency: int) -> bool:
    """Check ``count`` domains against NSD and against the fixture; True if every result is
    the same JSON (timings aside)."""
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        listing = os.path.join(tmp, "list.txt")
        Path(listing).write_text("\n".join(f"d{i}.bench.test" for i in range(count)) + "\n")
        for kind in ("nsd", "fixture"):
            server, label = serve(kind, count, delay)
            try:
                out = os.path.join(tmp, f"{kind}.jsonl")
                row = run_batch(listing, server.nameserver, count, [], concurrency, keep=out)
            finally:
                server.stop()
            with open(out) as fh:
                results[kind] = {d["target"]: _strip_timings(d) for d in map(json.loads, fh)}
            print(f"{label}: {row['results']} results, exit {row['exit_code']}, "
                  f"{row['wall_s']} s")
    a, b = results["nsd"], results["fixture"]
    differ = sorted(t for t in a.keys() | b.keys() if a.get(t) != b.get(t))
    statuses = sorted({d["status"] for d in a.values()})
    print(f"compared {len(a)} (NSD) and {len(b)} (fixture) results for {count} domains: "
          f"{len(differ)} differ; statuses seen: {statuses}")
    for target in differ[:3]:
        print(f"  {target}:\n    nsd:     {json.dumps(a.get(target))[:600]}\n"
              f"    fixture: {json.dumps(b.get(target))[:600]}")
    return not differ and len(a) == count


def resume_check(count: int, ns: str, concurrency: int, at: float = 0.4) -> bool:
    """Interrupt a run over ``count`` domains (SIGINT once ``at`` of them are written), resume
    it with the same command, and compare with an uninterrupted run: every domain exactly once,
    every line whole JSON, the same set of domains and the same results."""
    import signal

    with tempfile.TemporaryDirectory() as tmp:
        listing = os.path.join(tmp, "list.txt")
        Path(listing).write_text("\n".join(f"d{i}.bench.test" for i in range(count)) + "\n")
        scan, whole = os.path.join(tmp, "scan.jsonl"), os.path.join(tmp, "whole.jsonl")
        cmd = [SMTPCLI, "check-domain", "--from-file", listing, "--nameserver", ns,
               "--no-dnsbl", "--json", "--concurrency", str(concurrency), "--timeout", "10",
               "--resume", scan]

        def lines(path: str) -> int:
            with open(path, "rb") as fh:
                return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))

        with open(scan, "ab") as sink:
            first = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.PIPE)
            while lines(scan) < count * at and first.poll() is None:
                time.sleep(0.2)
            first.send_signal(signal.SIGINT)
            first_err = first.communicate(timeout=60)[1].decode().strip()
        written = lines(scan)
        print(f"interrupted at {written} of {count} domains: exit {first.returncode}; "
              f"stderr: {first_err[-200:]!r}")
        with open(scan, "ab") as sink:
            second = subprocess.run(cmd, stdout=sink, stderr=subprocess.PIPE, text=True)
        print(f"resumed: exit {second.returncode}; stderr: {second.stderr.strip()[-200:]!r}")
        with open(whole, "wb") as sink:
            subprocess.run(cmd[:-2], stdout=sink, stderr=subprocess.DEVNULL, check=False)

        def load(path: str) -> tuple[list[str], dict[str, Any]]:
            with open(path) as fh:
                docs = [json.loads(line) for line in fh]  # fails on a broken line
            return [d["target"] for d in docs], {d["target"]: _strip_timings(d) for d in docs}

        order, resumed = load(scan)
        whole_order, uninterrupted = load(whole)
    once = len(order) == len(set(order)) == count
    same_set = set(order) == set(whole_order) == {f"d{i}.bench.test" for i in range(count)}
    same = resumed == uninterrupted
    print(f"resumed scan: {len(order)} lines, {len(set(order))} distinct domains (each once: "
          f"{once}); same set of domains as the uninterrupted run ({len(whole_order)} lines): "
          f"{same_set}; same results: {same}")
    return first.returncode == 130 and 0 < written < count and once and same_set and same


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--server", choices=("auto", "nsd", "fixture"), default="auto")
    ap.add_argument("--delay", type=float, default=0.05, help="fixture only: seconds per answer")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--no-dkim-share", action="store_true",
                    help="skip the --no-common-selectors comparison at the smallest size")
    ap.add_argument("--compare", type=int, metavar="N", default=0,
                    help="only compare N domains' results from NSD and from the fixture")
    ap.add_argument("--resume-check", type=int, metavar="N", default=0,
                    help="only interrupt a run over N domains, resume it, and check the output")
    args = ap.parse_args()
    if args.compare:
        if not native_dns.available():
            sys.exit("--compare needs nsd (apt-get install -y nsd)")
        sys.exit(0 if compare(args.compare, args.delay, args.concurrency) else 1)
    kind = args.server
    if kind == "auto":
        kind = "nsd" if native_dns.available() else "fixture"
    elif kind == "nsd" and not native_dns.available():
        sys.exit("nsd is not installed (apt-get install -y nsd)")
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if args.resume_check:
        server, label = serve(kind, args.resume_check, args.delay)
        print(f"DNS server: {label}; load average {os.getloadavg()[0]:.2f}", flush=True)
        try:
            ok = resume_check(args.resume_check, server.nameserver, args.concurrency)
        finally:
            server.stop()
        sys.exit(0 if ok else 1)
    t = time.perf_counter()
    server, label = serve(kind, max(sizes), args.delay)
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs; DNS server: {label}; "
          f"zone of {max(sizes)} domains ready in {time.perf_counter() - t:.1f} s; "
          f"--concurrency {args.concurrency}", flush=True)
    ns = server.nameserver
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for size in sizes:
                listing = os.path.join(tmp, f"{size}.txt")
                Path(listing).write_text("\n".join(f"d{i}.bench.test" for i in range(size)) + "\n")
                row = run_batch(listing, ns, size, [], args.concurrency)
                rows.append(row)
                print(json.dumps(row), flush=True)
            share = None
            if not args.no_dkim_share:
                small = sizes[0]
                listing = os.path.join(tmp, f"{small}.txt")
                full = run_batch(listing, ns, small, [], args.concurrency)
                lean = run_batch(listing, ns, small, ["--no-common-selectors"], args.concurrency)
                share = {k: round(1 - float(lean[k]) / float(full[k]), 3) for k in
                         ("questions_per_domain", "wall_s", "cpu_ms_per_domain")}
    finally:
        server.stop()
    print(f"\nDNS server: {label}\n{'domains':>8} {'wall s':>8} {'dom/s':>7} {'cpu ms/dom':>10} "
          f"{'by quarter':>24} {'q/dom':>6} {'peak MiB':>9}  RSS MiB at 25/50/75/100 %  load")
    for r in rows:
        at, la = r["rss_mib_at"], r["load_avg_1min"]
        quarters = "/".join(str(q) for q in r["cpu_ms_per_domain_by_quarter"])
        print(f"{r['domains']:>8} {r['wall_s']:>8} {r['domains_per_s']:>7} "
              f"{r['cpu_ms_per_domain']:>10} {quarters:>24} {r['questions_per_domain']:>6} "
              f"{r['peak_rss_mib']:>9}  {' / '.join(str(v) for v in at.values())}"
              f"  {la['min']:.1f}-{la['max']:.1f}")
    if share is not None:
        print(f"\n16 common-selector DKIM probes at {sizes[0]} domains: "
              f"{share['questions_per_domain']:.0%} of the questions, {share['wall_s']:.0%} of "
              f"the wall time, {share['cpu_ms_per_domain']:.0%} of the CPU "
              f"(--no-common-selectors: {lean['wall_s']} s vs {full['wall_s']} s)")
    print(json.dumps({"benchmark": "check-domain-batch", "server": label, "rows": rows,
                      "dkim_common_share": share}))


if __name__ == "__main__":
    main()
