"""NSD (NLnet Labs' authoritative DNS server, Debian package `nsd`) on a loopback port.

The Python DNS fixture (tests/servers/dns_fixture.py) answers 12 to 18 generated domains a
second on this machine, so a scan of 100,000 domains would measure the fixture for hours. NSD
serves the same zone text in C: it answers with AA, NXDOMAIN vs no-data with the zone's SOA,
REFUSED outside its zones, like the fixture (no added delay: NSD has none). It runs as a
foreground child (`nsd -d`) with a generated configuration in a temporary folder, as the
current user, on 127.0.0.1 only.

    apt-get install -y nsd      # Debian/Ubuntu; the package's own service is not used
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

NSD = shutil.which("nsd") or ("/usr/sbin/nsd" if os.path.exists("/usr/sbin/nsd") else None)


def available() -> bool:
    return NSD is not None


def _free_port() -> int:
    """A port free for UDP and TCP on 127.0.0.1 (NSD needs both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return int(port)
    raise RuntimeError("no free port for UDP+TCP")


def with_soa(text: str, origin: str) -> str:
    """Zone text with the SOA the fixture's load_zone adds when a zone has none (NSD needs one;
    its minimum, 300, is the negative-answer TTL of both servers)."""
    apex = origin.rstrip(".") + "."
    return (f"$ORIGIN {apex}\n$TTL 300\n"
            f"@ IN SOA ns.{apex} hostmaster.{apex} 1 3600 600 86400 300\n" + text)


class NsdServer:
    """``NsdServer({"bench.test.": zone_text, ...}).start()``; ``nameserver``; ``stop()``."""

    def __init__(self, zones: dict[str, str]) -> None:
        if NSD is None:
            raise RuntimeError("nsd is not installed (apt-get install -y nsd)")
        self.zones = zones
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-nsd-")

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _config(self, folder: Path) -> Path:
        zones = []
        for n, (origin, text) in enumerate(self.zones.items()):
            (folder / f"z{n}.zone").write_text(with_soa(text, origin))
            zones.append(f"zone:\n  name: \"{origin}\"\n  zonefile: \"z{n}.zone\"\n")
        conf = folder / "nsd.conf"
        # username "" (stay the current user), no chroot, no zone database, one server
        # process (the machine has 2 cores); every path inside the temporary folder; only
        # 127.0.0.1.
        conf.write_text(
            "server:\n"
            f"  ip-address: 127.0.0.1@{self.port}\n"
            "  do-ip6: no\n"
            "  username: \"\"\n"
            "  chroot: \"\"\n"
            f"  zonesdir: \"{folder}\"\n"
            "  database: \"\"\n"
            f"  zonelistfile: \"{folder}/zone.list\"\n"
            f"  xfrdfile: \"{folder}/xfrd.state\"\n"
            f"  xfrdir: \"{folder}\"\n"
            f"  pidfile: \"{folder}/nsd.pid\"\n"
            f"  logfile: \"{folder}/nsd.log\"\n"
            "  server-count: 1\n"
            "  verbosity: 0\n"
            "  hide-version: yes\n"
            "  refuse-any: no\n"
            # No response rate limiting (NSD's default, 200 answers a second per client
            # network, drops most of a batch's questions: they time out).
            "  rrl-ratelimit: 0\n"
            "  rrl-whitelist-ratelimit: 0\n"
            "remote-control:\n"
            "  control-enable: no\n" + "".join(zones))
        return conf

    def start(self, timeout: float = 120.0) -> NsdServer:
        folder = Path(self._tmp.name)
        self.port = _free_port()
        conf = self._config(folder)
        assert NSD is not None
        self.proc = subprocess.Popen([NSD, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        apex = next(iter(self.zones))
        end = time.monotonic() + timeout  # a big zone takes a few seconds to load
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                log = folder / "nsd.log"
                raise RuntimeError("nsd exited: " + (log.read_text()[-2000:] if log.exists()
                                                     else "no log"))
            if self._answers(apex):
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("nsd did not answer in time")

    def _answers(self, apex: str) -> bool:
        import dns.message
        import dns.query
        import dns.rcode

        query = dns.message.make_query(apex, "SOA")
        try:
            reply = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.5)
        except Exception:  # noqa: BLE001 (not listening yet, or still loading)
            return False
        return bool(reply.rcode() == dns.rcode.NOERROR and reply.answer)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self._tmp.cleanup()
