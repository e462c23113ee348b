"""`smtpcli bench` side by side with Postfix's smtp-source, both into Postfix's smtp-sink.

    python benchmarks/bench.py [--messages 20000] [--size 1024] [--sessions 20] [--rounds 3]

Like for like, on loopback only, into one smtp-sink, in interleaved rounds (every round runs
every row once, so machine noise hits all rows alike; the table shows medians):
  - a connection per message: smtp-source (its default) vs `smtpcli bench --per-connection 1`;
  - connection reuse: `smtp-source -d` vs `smtpcli bench` (its default);
  - `smtpcli bench --pipelining` vs `smtp-source -d` (smtp-source has no pipelining);
  and, for information, connection per message spread over two processes (--workers 2).
Targets (issue 17): >= 0.8x, >= 0.8x, >= 1.2x. Wall time includes each tool's start-up. The
client's own CPU time per message is shown too: on a shared machine it moves less than wall
time. Then, unless --no-tls, `smtpcli bench` with STARTTLS + AUTH PLAIN into `smtpcli serve`
(numbers smtp-source cannot give: it speaks neither TLS nor AUTH).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

SMTPCLI = [sys.executable, "-m", "smtpcli"]
TIMEOUT = 300  # seconds, per run
# Bytecode is written as an installed package has it: with PYTHONDONTWRITEBYTECODE set (as in
# some CI and container set-ups) every run of a development checkout would compile smtpcli's
# modules again, start-up time that a regular install does not have.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listening on 127.0.0.1:{port}")


def start_sink(port: int) -> subprocess.Popen[bytes]:
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    proc = subprocess.Popen(["smtp-sink", *user, f"127.0.0.1:{port}", "256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(args: list[str]) -> tuple[float, float, str]:
    """(wall s, client CPU s, stdout) of one bounded run."""
    cpu0, t = _children_cpu(), time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, env=ENV)
    wall, cpu = time.perf_counter() - t, _children_cpu() - cpu0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({out.returncode}): {out.stderr.strip()}")
    return wall, cpu, out.stdout


def smtp_source_args(port: int, n: int, size: int, sessions: int, reuse: bool) -> list[str]:
    return ["smtp-source", *(["-d"] if reuse else []), "-l", str(size), "-m", str(n),
            "-s", str(sessions), f"127.0.0.1:{port}"]


def bench_args(port: int, n: int, size: int, sessions: int, *extra: str) -> list[str]:
    return [*SMTPCLI, "bench", f"127.0.0.1:{port}", "-n", str(n), "-c", str(sessions),
            "--size", str(size), "--json", *extra]


def check_bench(label: str, n: int, stdout: str) -> dict[str, Any]:
    f = json.loads(stdout)["facts"]
    if f["messages"]["accepted"] != n:
        raise SystemExit(f"{label}: only {f['messages']['accepted']}/{n} accepted")
    return f


def summarise(label: str, n: int, runs: list[tuple[float, float, str]]) -> dict[str, Any]:
    walls = [w for w, _, _ in runs]
    cpus = [c for _, c, _ in runs]
    row: dict[str, Any] = {
        "tool": label, "messages": n, "runs": len(runs),
        "wall_s": round(statistics.median(walls), 3),
        "messages_per_s": round(n / statistics.median(walls), 1),
        "cpu_us_per_message": round(statistics.median(cpus) / n * 1e6, 1),
    }
    if runs[0][2].startswith("{"):
        facts = [check_bench(label, n, out) for _, _, out in runs]
        lat = facts[len(facts) // 2]["latency_ms"]
        row.update(own_messages_per_s=statistics.median(f["messages_per_s"] for f in facts),
                   p50_ms=lat["message"]["p50"], p99_ms=lat["message"]["p99"],
                   tls_p50_ms=lat.get("tls", {}).get("p50"),
                   auth_p50_ms=lat.get("auth", {}).get("p50"))
    return row


PAIRS = {  # ratio name -> (smtpcli row, peer row, target)
    "connection_per_message": ("smtpcli bench --per-connection 1", "smtp-source", 0.8),
    "reuse": ("smtpcli bench", "smtp-source -d", 0.8),
    "pipelining_vs_reuse": ("smtpcli bench --pipelining", "smtp-source -d", 1.2),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-tls", action="store_true", help="skip the STARTTLS+AUTH rows")
    a = ap.parse_args()
    a.messages = max(100, min(a.messages, 200_000))  # bounded
    for tool in ("smtp-sink", "smtp-source"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (Debian package postfix)")
    n, size, sessions = a.messages, a.size, a.sessions
    rows: list[dict[str, Any]] = []
    port = free_port()
    sink = start_sink(port)
    commands = {
        "smtp-source": smtp_source_args(port, n, size, sessions, reuse=False),
        "smtpcli bench --per-connection 1": bench_args(port, n, size, sessions, "--tls", "none",
                                                       "--per-connection", "1"),
        "  same, --workers 2 (two processes)": bench_args(
            port, n, size, sessions, "--tls", "none", "--per-connection", "1", "--workers", "2"),
        "smtp-source -d": smtp_source_args(port, n, size, sessions, reuse=True),
        "smtpcli bench": bench_args(port, n, size, sessions, "--tls", "none"),
        "smtpcli bench --pipelining": bench_args(port, n, size, sessions, "--tls", "none",
                                                 "--pipelining"),
    }
    load_before = os.getloadavg()
    runs: dict[str, list[tuple[float, float, str]]] = {k: [] for k in commands}
    try:
        timed_run(commands["smtpcli bench"])  # warm-up: bytecode and page cache
        for _ in range(a.rounds):
            for label, args in commands.items():
                runs[label].append(timed_run(args))
    finally:
        sink.terminate()
        sink.wait(10)
    rows.extend(summarise(label, n, runs[label]) for label in commands)
    load_after = os.getloadavg()

    if not a.no_tls:
        # TLS + AUTH: smtp-source cannot do this; smtpcli serve is the receiver.
        tls_n = min(a.messages, 5000)
        with tempfile.TemporaryDirectory() as tmp:
            pw = os.path.join(tmp, "pw")
            with open(pw, "w") as fh:
                fh.write("secret\n")
            sport = free_port()
            serve = subprocess.Popen(
                [*SMTPCLI, "serve", "--listen", f"127.0.0.1:{sport}", "--tls-self-signed",
                 "--auth-accept-any", "--exit-after", str(TIMEOUT)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            try:
                wait_port(sport)
                tls_args = ["--tls", "starttls", "--insecure", "--user", "bench", "--password-file", pw]
                label = "smtpcli bench STARTTLS+AUTH -> serve"
                rows.append(summarise(label, tls_n, [timed_run(
                    bench_args(sport, tls_n, size, sessions, *tls_args))]))
                label = "  same, new connection per message"
                rows.append(summarise(label, tls_n, [timed_run(
                    bench_args(sport, tls_n, size, sessions, *tls_args, "--per-connection", "1"))]))
            finally:
                serve.terminate()
                serve.wait(20)

    print(f"{n} messages of {size} bytes, {sessions} connections, loopback, {a.rounds} "
          f"interleaved rounds (medians); load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after, {os.cpu_count()} CPUs\n")
    print(f"{'tool':<42} {'msgs':>6} {'wall s':>8} {'msg/s':>10} {'cpu us/msg':>10} "
          f"{'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        print(f"{r['tool']:<42} {r['messages']:>6} {r['wall_s']:>8} {r['messages_per_s']:>10,.1f}"
              f" {r['cpu_us_per_message']:>10} {r.get('p50_ms') or '':>8} {r.get('p99_ms') or '':>8}")
    by = {r["tool"]: r for r in rows}
    ratios = {}
    print("\nratios, like for like (msg/s; client CPU per message in parentheses, lower is better):")
    for name, (ours, peer, target) in PAIRS.items():
        ratio = by[ours]["messages_per_s"] / by[peer]["messages_per_s"]
        cpu = by[ours]["cpu_us_per_message"] / by[peer]["cpu_us_per_message"]
        ratios[name], ratios[name + "_cpu"] = round(ratio, 2), round(cpu, 2)
        verdict = "ok" if ratio >= target else "MISSED"
        print(f"  {ours:<34} / {peer:<15} {ratio:5.2f}x (target >= {target}x, {verdict})"
              f"  (cpu {cpu:.2f}x)")
    print(json.dumps({"benchmark": "bench", "load_average": [load_before[0], load_after[0]],
                      "rows": rows, "ratios": ratios}))


if __name__ == "__main__":
    main()
