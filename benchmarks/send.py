"""Benchmark: one message to a local sink, ``smtpcli send`` vs ``swaks``.

Starts Postfix's ``smtp-sink`` on a free loopback port (or, without Postfix, the aiosmtpd-based
test server in a thread), runs each client RUNS times after a warm-up, and prints the median wall
time of each and the ratio. Target: smtpcli within 1.5x of swaks.

    /opt/smtpcli-venv/bin/python benchmarks/send.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sink() -> tuple[int, object]:
    sink = shutil.which("smtp-sink") or ("/usr/sbin/smtp-sink" if os.path.exists("/usr/sbin/smtp-sink") else None)
    port = free_port()
    if sink:
        cmd = [sink]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        cmd += ["-c", f"127.0.0.1:{port}", "1000"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return port, proc
            except OSError:
                time.sleep(0.05)
        proc.kill()
        raise SystemExit("smtp-sink did not start")
    sys.path.insert(0, str(ROOT))
    from tests.servers.smtp_fixture import start_smtp_server

    server = start_smtp_server("plain")
    return server.port, server


def bench_env() -> dict[str, str]:
    """Like an installed package: bytecode cached (the warm-up writes it). A dev shell with
    PYTHONDONTWRITEBYTECODE recompiles every module on every run, which is not what users see;
    the cache goes to a prefix directory so the source tree stays clean."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(
        os.environ.get("TMPDIR", "/tmp"), "smtpcli-bench-pycache")
    return env


def timed(cmd: list[str], runs: int) -> list[float]:
    env = bench_env()
    for _ in range(2):  # warm-up: bytecode cache, page cache
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                       env=env)
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                       env=env)
        times.append((time.perf_counter() - began) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    port, sink = start_sink()
    smtpcli = str(Path(sys.executable).with_name("smtpcli"))
    envelope = ["--from", "alice@example.test", "--to", "bob@example.test"]
    cmds = {
        "smtpcli send": [smtpcli, "send", "-s", f"127.0.0.1:{port}", "--tls", "none", *envelope],
    }
    swaks = shutil.which("swaks")
    if swaks:
        cmds["swaks"] = [swaks, "--server", f"127.0.0.1:{port}", *envelope]
    try:
        medians = {}
        for name, cmd in cmds.items():
            times = timed(cmd, args.runs)
            medians[name] = statistics.median(times)
            print(f"{name:<14} median {medians[name]:7.1f} ms  (min {min(times):.1f}, "
                  f"max {max(times):.1f}, {args.runs} runs)")
        if "swaks" in medians:
            ratio = medians["smtpcli send"] / medians["swaks"]
            verdict = "within" if ratio <= 1.5 else "OUTSIDE"
            print(f"ratio smtpcli/swaks: {ratio:.2f}x ({verdict} the 1.5x target)")
        else:
            print("swaks not installed: no ratio")
    finally:
        if isinstance(sink, subprocess.Popen):
            sink.terminate()
            sink.wait(5)
        else:
            sink.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
