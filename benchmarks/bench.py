"""`smtpcli bench` side by side with Postfix's smtp-source, both into Postfix's smtp-sink.

    python benchmarks/bench.py [--messages 20000] [--size 1024] [--sessions 20]

Runs, in one go, on loopback only:
  1. smtp-source (one connection per message, its default) and `smtp-source -d` (connection
     reuse) into smtp-sink;
  2. `smtpcli bench` (connection reuse) without and with --pipelining into the same smtp-sink;
  3. `smtpcli bench` with STARTTLS + AUTH PLAIN into `smtpcli serve` (numbers smtp-source
     cannot give: it speaks neither TLS nor AUTH).
Every run is bounded in message count and by a wall-clock timeout. Prints a table and a JSON
line with the ratios (target: smtpcli >= 0.5x smtp-source's messages/s at 20 connections).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

SMTPCLI = [sys.executable, "-m", "smtpcli"]
TIMEOUT = 300  # seconds, per run


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


def smtp_source(port: int, n: int, size: int, sessions: int, reuse: bool) -> dict[str, Any]:
    args = ["smtp-source", *(["-d"] if reuse else []), "-l", str(size), "-m", str(n),
            "-s", str(sessions), f"127.0.0.1:{port}"]
    t = time.perf_counter()
    subprocess.run(args, check=True, timeout=TIMEOUT, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    return {"tool": "smtp-source" + (" -d" if reuse else ""), "messages": n,
            "wall_s": round(wall, 3), "messages_per_s": round(n / wall, 1)}


def smtpcli_bench(port: int, n: int, size: int, sessions: int, *extra: str,
                  label: str = "smtpcli bench") -> dict[str, Any]:
    args = [*SMTPCLI, "bench", f"127.0.0.1:{port}", "-n", str(n), "-c", str(sessions),
            "--size", str(size), "--json", *extra]
    t = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)
    wall = time.perf_counter() - t
    doc = json.loads(out.stdout)
    f = doc["facts"]
    if f["messages"]["accepted"] != n:
        raise SystemExit(f"{label}: only {f['messages']['accepted']}/{n} accepted: {out.stderr}")
    lat = f["latency_ms"]
    return {"tool": label, "messages": n, "wall_s": round(wall, 3),
            # Wall clock includes interpreter start-up (~0.2 s), like smtp-source's does.
            "messages_per_s": round(n / wall, 1), "own_messages_per_s": f["messages_per_s"],
            "p50_ms": lat["message"]["p50"], "p99_ms": lat["message"]["p99"],
            "tls_p50_ms": lat.get("tls", {}).get("p50"), "auth_p50_ms": lat.get("auth", {}).get("p50")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--sessions", type=int, default=20)
    a = ap.parse_args()
    a.messages = max(100, min(a.messages, 200_000))  # bounded
    for tool in ("smtp-sink", "smtp-source"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (Debian package postfix)")
    rows: list[dict[str, Any]] = []
    port = free_port()
    sink = start_sink(port)
    try:
        rows.append(smtp_source(port, a.messages, a.size, a.sessions, reuse=False))
        rows.append(smtp_source(port, a.messages, a.size, a.sessions, reuse=True))
        rows.append(smtpcli_bench(port, a.messages, a.size, a.sessions, "--tls", "none"))
        rows.append(smtpcli_bench(port, a.messages, a.size, a.sessions, "--tls", "none",
                                  "--pipelining", label="smtpcli bench --pipelining"))
    finally:
        sink.terminate()
        sink.wait(10)

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
            rows.append(smtpcli_bench(sport, tls_n, a.size, a.sessions, *tls_args,
                                      label="smtpcli bench STARTTLS+AUTH -> serve"))
            rows.append(smtpcli_bench(sport, tls_n, a.size, a.sessions, *tls_args,
                                      "--per-connection", "1",
                                      label="  same, new connection per message"))
        finally:
            serve.terminate()
            serve.wait(20)

    print(f"{a.messages} messages of {a.size} bytes, {a.sessions} connections, loopback\n")
    print(f"{'tool':<42} {'msgs':>6} {'wall s':>8} {'msg/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        print(f"{r['tool']:<42} {r['messages']:>6} {r['wall_s']:>8} {r['messages_per_s']:>10,.1f}"
              f" {r.get('p50_ms') or '':>8} {r.get('p99_ms') or '':>8}")
    by = {r["tool"]: r["messages_per_s"] for r in rows}
    ratios = {
        "bench_vs_smtp_source": round(by["smtpcli bench"] / by["smtp-source"], 2),
        "bench_vs_smtp_source_d": round(by["smtpcli bench"] / by["smtp-source -d"], 2),
        "bench_pipelining_vs_smtp_source_d": round(
            by["smtpcli bench --pipelining"] / by["smtp-source -d"], 2),
    }
    print("\nratios (target >= 0.5):", ", ".join(f"{k} {v}x" for k, v in ratios.items()))
    print(json.dumps({"benchmark": "bench", "rows": rows, "ratios": ratios}))


if __name__ == "__main__":
    main()
