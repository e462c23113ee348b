"""Benchmark `smtpcli check-domain` against checkdmarc on the loopback DNS fixture.

Every answer is delayed by 50 ms (--delay). The fixture listens on 127.0.0.1:53 because
checkdmarc's --nameserver takes no port (needs root; otherwise pass --port and checkdmarc is
skipped). Measures, for one domain: wall time and the questions each tool sent; for N generated
domains (default 500): domains/s and peak memory of smtpcli. Prints ratios.

    /opt/smtpcli-venv/bin/python benchmarks/check_domain.py [--delay 0.05] [--domains 500]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers.dns_fixture import DnsServer, load_zone, load_zone_file  # noqa: E402

VENV_BIN = Path(sys.executable).parent
SMTPCLI = str(VENV_BIN / "smtpcli")
CHECKDMARC = str(VENV_BIN / "checkdmarc")
ZONES = ROOT / "tests" / "zones"
#: Longest chain of dependent questions for cd-clean.test: MX -> A -> PTR -> A (forward-confirm).
DEPTH = 4


class FixedPortServer(DnsServer):
    """The fixture bound to a fixed port (53 for checkdmarc)."""

    def __init__(self, *args: object, fixed_port: int, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.fixed_port = fixed_port

    _below: dict[int, set[object]] = {}

    def _has_below(self, zone, name):  # type: ignore[no-untyped-def,override]
        """Same answer as the fixture's scan of every node, from a precomputed set: the scan is
        O(zone size) per question and made the server, not the tools, the bottleneck."""
        names = self._below.get(id(zone))
        if names is None:
            names = set()
            for owner in zone.nodes:
                while len(owner) >= len(zone.origin):
                    names.add(owner)
                    if owner == zone.origin:
                        break
                    owner = owner.parent()
            self._below[id(zone)] = names
        return name in names

    def _bind(self) -> tuple[socket.socket, socket.socket]:
        if not self.fixed_port:
            return super()._bind()
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((self.host, self.fixed_port))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((self.host, self.fixed_port))
        return udp, tcp


def generated_zone(count: int) -> str:
    """`count` domains under bench.test, each with MX, SPF (one include), DMARC, MTA-STS TXT,
    TLS-RPT and a DKIM key at selector1."""
    lines = ["$ORIGIN bench.test.", "$TTL 300", "mx1 IN A 127.0.0.10", "mx2 IN A 127.0.0.11",
             '_spf IN TXT "v=spf1 ip4:192.0.2.0/24 -all"']
    for i in range(count):
        d = f"d{i}"
        lines += [
            f"{d} IN MX 10 mx1.bench.test.", f"{d} IN MX 20 mx2.bench.test.",
            f'{d} IN TXT "v=spf1 mx include:_spf.bench.test -all"',
            f'_dmarc.{d} IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{d}.bench.test"',
            f'_smtp._tls.{d} IN TXT "v=TLSRPTv1; rua=mailto:tls@{d}.bench.test"',
            f'selector1._domainkey.{d} IN TXT "v=DKIM1; k=ed25519; '
            'p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="',
        ]
    return "\n".join(lines) + "\n"


def start(delay: float, port: int, extra: list[str] | None = None) -> FixedPortServer:
    zones = [load_zone_file(ZONES / n) for n in
             ("cd-clean.test.zone", "cd-ext.test.zone", "cd-reverse.zone")]
    zones += [load_zone(text) for text in (extra or [])]
    return FixedPortServer(zones, delay=delay, fixed_port=port).start()  # type: ignore[return-value]


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before), proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delay", type=float, default=0.05)
    ap.add_argument("--domains", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--port", type=int, default=53 if os.geteuid() == 0 else 0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    env = dict(os.environ, NO_COLOR="1")

    server = start(args.delay, args.port)
    ns = server.nameserver
    print(f"DNS fixture on {ns}, {args.delay * 1000:.0f} ms per answer")

    # Start-up: the same command with no DNS work at all (--record lint, no lookups).
    startup = min(timed([SMTPCLI, "check-domain", "--record", "v=DMARC1; p=reject",
                         "--nameserver", ns], env)[0]
                  for _ in range(args.runs))
    rows = []
    variants = [
        ("smtpcli (all checks)", [SMTPCLI, "check-domain", "cd-clean.test", "--nameserver", ns,
                                  "--no-dnsbl", "--json"]),
        ("smtpcli (checkdmarc's scope)", [SMTPCLI, "check-domain", "cd-clean.test", "--nameserver",
                                          ns, "--json", "--only", "mx", "--only", "spf", "--only",
                                          "dmarc", "--only", "mta-sts", "--only", "tlsrpt",
                                          "--only", "bimi", "--only", "dnssec"]),
    ]
    if args.port == 53 and shutil.which(CHECKDMARC):
        variants.append(("checkdmarc --skip-tls", [CHECKDMARC, "cd-clean.test", "--nameserver",
                                                   "127.0.0.1", "--skip-tls", "-t", "5"]))
    for name, cmd in variants:
        walls = []
        questions = 0
        for _ in range(args.runs):
            server.queries.clear()
            walls.append(timed(cmd, env)[0])
            questions = len(server.queries)
        rows.append((name, min(walls), questions))
    print(f"\nOne domain (cd-clean.test), best of {args.runs}; start-up {startup:.3f} s")
    print(f"{'tool':<32}{'wall s':>9}{'questions':>11}")
    for name, wall, q in rows:
        print(f"{name:<32}{wall:>9.3f}{q:>11}")
    bound = DEPTH * args.delay + startup
    ours = rows[0][1]
    print(f"dependency depth {DEPTH} x {args.delay * 1000:.0f} ms + start-up = {bound:.3f} s; "
          f"smtpcli (all checks) / that = {ours / bound:.2f} (target <= 1.5)")
    if len(rows) == 3:
        print(f"checkdmarc / smtpcli (all checks) = {rows[2][1] / rows[0][1]:.1f}x, "
              f"(same scope) = {rows[2][1] / rows[1][1]:.1f}x (target >= 5x)")
        print(f"questions: checkdmarc {rows[2][2]}, smtpcli same scope {rows[1][2]}, "
              f"smtpcli all {rows[0][2]}")
    server.stop()

    # Many domains.
    server = start(args.delay, args.port, [generated_zone(args.domains)])
    ns = server.nameserver
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(f"d{i}.bench.test" for i in range(args.domains)) + "\n")
        listing = fh.name
    server.queries.clear()
    # Peak memory of the smtpcli child alone (ru_maxrss of a fresh wrapper process).
    cmd = [SMTPCLI, "check-domain", "--from-file", listing, "--nameserver", ns, "--no-dnsbl",
           "--json", "--concurrency", str(args.concurrency), "--timeout", "10"]
    probe = ("import resource,subprocess,sys,time;t=time.perf_counter();"
             "p=subprocess.run(sys.argv[1:],stdout=subprocess.PIPE);"
             "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,"
             " p.stdout.count(b'\\n'), p.returncode)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True,
                         env=env, timeout=1800).stdout.split()
    wall, peak_kib, lines = float(out[0]), int(out[1]), int(out[2])
    print(f"\n{args.domains} generated domains, --concurrency {args.concurrency}: "
          f"{wall:.2f} s, {args.domains / wall:.1f} domains/s (target >= 30), "
          f"peak RSS {peak_kib / 1024:.0f} MiB (target < 300), {lines} JSON lines, "
          f"{len(server.queries)} questions ({len(server.queries) / args.domains:.0f}/domain)")
    server.stop()
    os.unlink(listing)


if __name__ == "__main__":
    main()
