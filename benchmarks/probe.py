"""Benchmark `smtpcli probe` on a domain with 2 MX x 2 addresses whose greeting comes after 200 ms.

Set-up (all loopback): the DNS fixture serves ``bench.test`` (MX mx1, mx2; mx1 -> 127.0.0.1 and
127.0.0.2, mx2 -> 127.0.0.3 and 127.0.0.4, plus PTR records), and a small asyncio SMTP server
listens on the same port on the four addresses: greeting after ``--delay`` (200 ms), EHLO with
STARTTLS (trustme certificate), STARTTLS, VRFY/EXPN answered 252/502, QUIT.

Measured (median wall time of ``--runs`` runs, each a fresh process):
  * ``smtpcli probe bench.test`` (concurrent: the target is about one greeting delay),
  * the same with ``--concurrency 1`` (addresses one after another),
  * ``smtpcli probe 127.0.0.1:PORT`` (one address),
  * ``posttls-finger -c -l secure -F ca.pem [127.0.0.1]:PORT`` (one address: posttls-finger asks
    the system resolver for MX records, which cannot be pointed at the fixture, so it gets the
    address literal), and 4 x that run one after another (what a sequential tool costs for the
    domain).

    /opt/smtpcli-venv/bin/python benchmarks/probe.py [--delay 0.2] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers.dns_fixture import start_dns_server  # noqa: E402

SMTPCLI = str(Path(sys.executable).parent / "smtpcli")
ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
ZONE = """$ORIGIN bench.test.
@    MX 10 mx1.bench.test.
@    MX 20 mx2.bench.test.
mx1  A 127.0.0.1
mx1  A 127.0.0.2
mx2  A 127.0.0.3
mx2  A 127.0.0.4
"""
PTR = """$ORIGIN 0.0.127.in-addr.arpa.
1 PTR mx1.bench.test.
2 PTR mx1.bench.test.
3 PTR mx2.bench.test.
4 PTR mx2.bench.test.
"""


def make_certs(directory: Path) -> tuple[Path, ssl.SSLContext]:
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("mx1.bench.test", "mx2.bench.test", *ADDRESSES)
    ca_path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(ctx)
    return ca_path, ctx


class DelayedSmtp:
    """Greeting after ``delay`` seconds, then a minimal STARTTLS-capable ESMTP dialogue."""

    def __init__(self, delay: float, tls: ssl.SSLContext) -> None:
        self.delay = delay
        self.tls = tls
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        secure = False
        try:
            await asyncio.sleep(self.delay)
            writer.write(b"220 mx.bench.test ESMTP\r\n")
            await writer.drain()
            while line := await reader.readline():
                verb = line.strip().split(b" ", 1)[0].upper()
                if verb in (b"EHLO", b"HELO"):
                    caps = [b"mx.bench.test", b"PIPELINING", b"SIZE 10240000", b"8BITMIME"]
                    caps += [b"AUTH PLAIN LOGIN"] if secure else [b"STARTTLS"]
                    writer.write(b"".join(b"250-" + c + b"\r\n" for c in caps[:-1])
                                 + b"250 " + caps[-1] + b"\r\n")
                elif verb == b"STARTTLS" and not secure:
                    writer.write(b"220 2.0.0 go ahead\r\n")
                    await writer.drain()
                    await writer.start_tls(self.tls)
                    secure = True
                    continue
                elif verb == b"VRFY":
                    writer.write(b"252 2.0.0 cannot verify\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 2.0.0 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"502 5.5.1 not implemented\r\n")
                await writer.drain()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.close()


def start_servers(port: int, handler: DelayedSmtp) -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def setup() -> None:
        for address in ADDRESSES:
            await asyncio.start_server(handler.handle, address, port, reuse_address=True)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(setup())
        loop.call_soon(ready.set)
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    ready.wait(5)
    return loop


def free_port() -> int:
    import socket

    for _ in range(100):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        try:
            for address in ADDRESSES:
                t = socket.socket()
                t.bind((address, port))
                t.close()
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


def timed(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> tuple[float, int]:
    times = []
    inside: list[float] = []
    code = 0
    for _ in range(runs):
        began = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
        times.append(time.perf_counter() - began)
        code = proc.returncode
        if "--json" in cmd and proc.stdout.startswith("{"):
            inside.append(json.loads(proc.stdout)["facts"].get("elapsed_ms", 0.0))
    if inside:
        print(f"  (inside the process: median {statistics.median(inside):.0f} ms)")
        if proc.returncode not in (0, 1):
            print(f"  ! {' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[:300]}")
    return statistics.median(times), code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="probe-bench-"))
    ca_path, tls = make_certs(work)
    port = free_port()
    handler = DelayedSmtp(args.delay, tls)
    start_servers(port, handler)
    dns = start_dns_server(zones={"bench.test.": ZONE, "0.0.127.in-addr.arpa.": PTR})
    common = ["--nameserver", dns.nameserver, "--cafile", str(ca_path), "--port", str(port),
              "--json"]
    rows: list[tuple[str, float]] = []

    def measure(label: str, cmd: list[str], env: dict[str, str] | None = None) -> float:
        before = handler.connections
        wall, code = timed(cmd, args.runs, env)
        per_run = (handler.connections - before) / args.runs
        rows.append((label, wall))
        print(f"{label:<58} {wall * 1000:8.0f} ms  (exit {code}, {per_run:.0f} connections/run)")
        return wall

    print(f"greeting delay {args.delay * 1000:.0f} ms; 2 MX x 2 addresses; median of {args.runs}")
    print(f"python start-up floor: `smtpcli --version` "
          f"{timed([SMTPCLI, '--version'], args.runs)[0] * 1000:.0f} ms")
    conc = measure("smtpcli probe bench.test (concurrent)", [SMTPCLI, "probe", "bench.test",
                                                            *common])
    seq = measure("smtpcli probe bench.test --concurrency 1",
                  [SMTPCLI, "probe", "bench.test", "--concurrency", "1", *common])
    quick = measure("smtpcli probe bench.test --no-tls-versions",
                    [SMTPCLI, "probe", "bench.test", "--no-tls-versions", *common])
    one = measure("smtpcli probe 127.0.0.1:PORT (one address)",
                  [SMTPCLI, "probe", f"127.0.0.1:{port}", "--nameserver", dns.nameserver,
                   "--cafile", str(ca_path), "--json"])
    finger = shutil.which("posttls-finger") or "/usr/sbin/posttls-finger"
    ptf = None
    if Path(finger).exists():
        # posttls-finger reads main.cf (MAIL_CONFIG); without DNS lookups disabled it spends
        # seconds asking the (absent) system resolver before it connects.
        conf = work / "postfix"
        conf.mkdir()
        (conf / "main.cf").write_text("disable_dns_lookups = yes\nsmtp_host_lookup = native\n")
        env = {**os.environ, "MAIL_CONFIG": str(conf)}
        ptf = measure("posttls-finger -c -l secure [127.0.0.1]:PORT (one address)",
                      [finger, "-c", "-l", "secure", "-F", str(ca_path), f"[127.0.0.1]:{port}"],
                      env)
    print()
    if args.delay:
        print(f"concurrent / greeting delay      {conc / args.delay:5.2f}x  (target: close to 1)")
    print(f"sequential / concurrent          {seq / conc:5.2f}x")
    print(f"concurrent / one address         {conc / one:5.2f}x")
    print(f"--no-tls-versions / concurrent   {quick / conc:5.2f}x")
    if ptf is not None:
        print(f"posttls-finger x4 (sequential)   {4 * ptf * 1000:5.0f} ms; smtpcli domain run is "
              f"{conc / (4 * ptf):.2f}x of that; one address: smtpcli/posttls-finger "
              f"{one / ptf:.2f}x")
    dns.stop()


if __name__ == "__main__":
    main()
