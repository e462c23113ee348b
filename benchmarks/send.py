"""Benchmark: one message to a local sink, ``smtpcli send`` vs ``swaks``, plain and STARTTLS.

Plain: both clients into Postfix's ``smtp-sink`` on a free loopback port (without Postfix, the
aiosmtpd-based test server in a thread). STARTTLS: both into ``smtpcli serve --tls-self-signed``
(swaks does not verify certificates; smtpcli runs with --insecure, like for like). Runs are
interleaved round-robin after two warm-up rounds, so machine noise hits every command alike;
prints the median wall time, the median CPU time (user + system of the child; it moves less
than wall time on a busy machine) and the ratios; with --instructions, also each command's
instruction count under valgrind, which does not move with the machine's load. Targets (issue
17): plain <= 1.5x swaks, STARTTLS <= 1.7x.

    .venv/bin/python benchmarks/send.py [--runs 15] [--instructions]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from timing import instructions, run_timed  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], what: str,
                   tries: int = 100) -> tuple[int, subprocess.Popen[bytes]]:
    """``(port, proc)`` once something accepts on ``port``; ``what`` names it if never."""
    for _ in range(tries):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return port, proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{what} did not start")


def start_sink() -> tuple[int, object]:
    sink = shutil.which("smtp-sink") or ("/usr/sbin/smtp-sink" if os.path.exists("/usr/sbin/smtp-sink") else None)
    port = free_port()
    if sink:
        cmd = [sink]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        cmd += ["-c", f"127.0.0.1:{port}", "1000"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return wait_listening(port, proc, "smtp-sink", tries=50)
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


def measure(cmds: dict[str, list[str]], runs: int) -> dict[str, tuple[list[float], list[float]]]:
    """name -> (wall ms, cpu ms) of ``runs`` interleaved runs after two warm-up rounds."""
    env = bench_env()
    out: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in cmds}
    for i in range(runs + 2):
        for name, cmd in cmds.items():
            wall, cpu, code = run_timed(cmd, env)
            if code != 0:
                raise SystemExit(f"{name} exited with {code}")
            if i >= 2:
                out[name][0].append(wall * 1000)
                out[name][1].append(cpu * 1000)
    return out


def start_tls_server() -> tuple[int, subprocess.Popen[bytes]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "smtpcli", "serve", "--listen", f"127.0.0.1:{port}",
         "--tls-self-signed", "--exit-after", "600"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return wait_listening(port, proc, "smtpcli serve")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--editable", action="store_true",
                        help="run the venv's (editable) smtpcli instead of a regular install")
    parser.add_argument("--instructions", action="store_true",
                        help="also count each command's machine instructions once under "
                             "valgrind (the same on a busy machine as on a quiet one)")
    args = parser.parse_args()
    port, sink = start_sink()
    tls_port, tls_server = start_tls_server()
    tmp = tempfile.TemporaryDirectory(prefix="smtpcli-send-bench-")
    if args.editable:
        smtpcli = str(Path(sys.executable).with_name("smtpcli"))
    else:
        # What users run: the package copied into a venv (no editable-install import hook).
        from startup import regular_install

        smtpcli = regular_install(Path(tmp.name) / "venv")[1]
    print(f"smtpcli: {smtpcli}")
    envelope = ["--from", "alice@example.test", "--to", "bob@example.test"]
    cmds = {
        "smtpcli send": [smtpcli, "send", "-s", f"127.0.0.1:{port}", "--tls", "none", *envelope],
        "smtpcli send STARTTLS": [smtpcli, "send", "-s", f"127.0.0.1:{tls_port}", "--tls",
                                  "starttls", "--insecure", *envelope],
    }
    swaks = shutil.which("swaks")
    if swaks:
        cmds["swaks"] = [swaks, "--server", f"127.0.0.1:{port}", *envelope]
        cmds["swaks STARTTLS"] = [swaks, "--server", f"127.0.0.1:{tls_port}", "--tls", *envelope]
    try:
        load = os.getloadavg()[0]
        results = measure(cmds, args.runs)
        print(f"{args.runs} interleaved runs per command, medians; load average {load:.2f} "
              f"before, {os.getloadavg()[0]:.2f} after, {os.cpu_count()} CPUs")
        medians = {}
        for name, (wall, cpu) in results.items():
            medians[name] = (statistics.median(wall), statistics.median(cpu))
            print(f"{name:<24} median {medians[name][0]:7.1f} ms  (min {min(wall):.1f}, max "
                  f"{max(wall):.1f})  cpu {medians[name][1]:6.1f} ms")
        if swaks:
            for ours, theirs, target in (("smtpcli send", "swaks", 1.5),
                                         ("smtpcli send STARTTLS", "swaks STARTTLS", 1.7)):
                ratio = medians[ours][0] / medians[theirs][0]
                cpu = medians[ours][1] / medians[theirs][1]
                verdict = "within" if ratio <= target else "OUTSIDE"
                print(f"ratio {ours} / {theirs}: {ratio:.2f}x wall, {cpu:.2f}x cpu "
                      f"({verdict} the {target}x target)")
        else:
            print("swaks not installed: no ratio")
        if args.instructions and swaks:
            counts = {name: instructions(cmd, bench_env()) for name, cmd in cmds.items()}
            for ours, theirs in (("smtpcli send", "swaks"),
                                 ("smtpcli send STARTTLS", "swaks STARTTLS")):
                a, b = counts[ours], counts[theirs]
                if a is None or b is None:
                    print("valgrind not installed: no instruction counts")
                    break
                print(f"instructions {ours}: {a / 1e6:.1f} M, {theirs}: {b / 1e6:.1f} M, "
                      f"ratio {a / b:.2f}x")
    finally:
        tmp.cleanup()
        tls_server.terminate()
        tls_server.wait(10)
        if isinstance(sink, subprocess.Popen):
            sink.terminate()
            sink.wait(5)
        else:
            sink.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
