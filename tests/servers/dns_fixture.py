"""A small authoritative DNS server (dnspython) on a free loopback port, UDP and TCP.

It serves zone files from ``tests/zones/`` and inline zone text, answers with AA, NXDOMAIN vs
no-data, CNAME chasing across the served zones and simple wildcards; REFUSED outside them.
Answers run as concurrent asyncio tasks, so `delay` delays parallel queries in parallel.

Hostile behaviours per query name (``server.behaviour[name] = ...``, settable any time; the key
may be ``"name"``, ``("name", "MX")`` or ``"*"`` for every name): ``"servfail"``, ``"refused"``,
any other rcode name (``"nxdomain"``, ``"formerr"``...), ``"timeout"`` (never answer),
``"truncate"`` (TC and no records over UDP, full answer over TCP) and ``"garbage"`` (random bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import textwrap
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.resolver
import dns.rrset
import dns.zone
import pytest

ZONES_DIR = Path(__file__).resolve().parent.parent / "zones"
_ORIGIN_RE = re.compile(r"^\$ORIGIN\s+(\S+)", re.MULTILINE)
IN = dns.rdataclass.IN

#: Private key (test-only) matching ``selector1._domainkey.example.test`` in example.test.zone.
EXAMPLE_TEST_DKIM_KEY_PEM = b"""\
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDTbxlEcTOKGnbz
Aa6bYaaXYPYPGmXXsosBOeJV0QgK69IufpsKuJA1oxxNuRE69H/iKF6j6jYAhN6J
u2dfIWabjST3w8k3/lZ56w+ZoVs7X92Rs7l17e0S172ThSvPUNax85GWaHpos7Xy
ANwhhN+rX/ASOiI+g/sqKA9sl/J9Af2hPCD8FHcOH/HcaXIsa59I9rQLGAI2sIQo
vKXqt0HsAnfcL9d83b/2JfpQkZ7R1clQm8k3Rj5SwfGCmtZFXR0yMl7lo6H5gwTT
T10lwt3HzpbejrSbC+vUDio2MgP2iJ0CWA0CK6c6PmSEBRCMVLnHRjfZQyl9D5UR
4LluxnV9AgMBAAECggEADLEYlTEuZNXd2gx5zL354BBj9Ngi0OXYzkQJQBmCIBWz
0jKrX+NgVLfr1QaM8DsJCixeMfy3LSTMrvve4qkAncnFNFI+W+waiMsBbrlu3ouM
o1hkg526o2zr5lUSIim6GYiDbsHqxyoye8ptbF2rh4AEyzNOJu6JPyiUdHJSjgpa
gReU3SKvY3mXy6jUjTK+7FXQ0Sd0CHg0mKUC5OeBPIY6LaeMCUakG8qkZGZ6tBuQ
b99QZX4d74Bcb/k/tKJNiAs7F6lDeMycswDC27RuSAHbG3jjFx8J6Tk8b2He69pn
W9/Apisl1vMSGBwMqPknaJ8Tpq5ehOBz3/kpSQE9gQKBgQD+2T5oVrGI9YfyJSht
n+cXsMsdUU7KoICAA/Ey7/ypIaKbar1vrkWPOTFUEkVFu2Hje5ngn8gzW2skZdbq
8eJDBywG5ngW2g4jjcBIqDoWTmoLnk7tDbit576ENW/5MYpLjhzMWlU9UkConmvl
jrwfpAvpMFqvBQuKz50IM65EzQKBgQDUY6RQF0t4LA1PJ4fN4pdDU6olsdRVIpnj
B+1ymC5rPK3GEMPl3ccVYQXRH8l6XgQyIpduM2AlaTLib0yYTLYwTZgqQchMIJ9X
NdifU82gyrnZH3PNRyrUOe87PehJIMqSHoWpsJIV9G0Sf42qNU+x1sy0lLvjzqF4
NKlivbpzcQKBgQDhuwklIAz2tAxrNfB+UVE+0bDHUhqJLetD+LnvFVTldk5yfPQ4
dNNWDiGcRuam4lfNR9C/fqe0nbfkMHRR/FgeaL7dicw66X/2i/sSIDf7RA94JQvh
uvKmzwsYTcDVp8TIMaNeenDf9PgiotgNKAWHvSVzsgnQ1pYnqMd92VD1zQKBgQCJ
HO6l+fPx19abxDRrGR54C5orjZs7fwQDykljkpVdC6ZP2ODvE/cDeUhtEm1avzlM
OIK0VRx76mc8QYgcRmHT2zQiC6fIZcMYZR289jgo1teWMTTsUEZ5DhHAmB3OoAnG
vUejHeehntOPfqMxQAt8DuTGq8KEthAN70lvAndNMQKBgGCqyBu8ejGQqKoFX+7p
RYnOaoWznP0dm7jlSK1BrZO5dOjBXCKUP/CaR7QrCPLnAt+dCurJvwtIUV5Q0q1q
Inox14DBlkokPdPTbd/rGVsQLkwHXB3v8f+XxITBy5dbizlKdlqhLvszEjCQn4V6
3yWenxz1kPKVM6Zfe8fGt6g6
-----END PRIVATE KEY-----
"""


class Query(NamedTuple):
    """One query received: ``("mx1.example.test.", "A", "udp")``."""

    qname: str
    rdtype: str
    transport: str


def load_zone(text: str, origin: str | None = None) -> dns.zone.Zone:
    """Parse (dedented) zone text; origin from the argument or the text's $ORIGIN.

    $TTL defaults to 300; SOA and NS are optional (a default SOA is added when missing).
    """
    if origin is None:
        match = _ORIGIN_RE.search(text)
        if match is None:
            raise ValueError("zone text has no $ORIGIN and no origin was given")
        origin = match.group(1)
    text = textwrap.dedent(text)
    if "$TTL" not in text:
        text = "$TTL 300\n" + text
    zone = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
    apex = zone.origin
    assert apex is not None
    if zone.get_rdataset(apex, dns.rdatatype.SOA) is None:
        soa = dns.rdataset.from_text(
            IN, dns.rdatatype.SOA, 300, f"ns.{apex} hostmaster.{apex} 1 3600 600 86400 300"
        )
        zone.replace_rdataset(apex, soa)
    return zone


def load_zone_file(path: Path) -> dns.zone.Zone:
    """Load `path`; origin from its $ORIGIN, else from its name (``NAME.zone``)."""
    text = path.read_text()
    origin = None if _ORIGIN_RE.search(text) else path.name.removesuffix(".zone") + "."
    return load_zone(text, origin)


def _rrset(name: dns.name.Name, rds: dns.rdataset.Rdataset) -> dns.rrset.RRset:
    return dns.rrset.from_rdata_list(name, rds.ttl, list(rds))


class DnsServer:
    """The running server. Mutable after start: `behaviour`, `delay`, `delays`, `ad`, zones."""

    def __init__(
        self,
        zones: Iterable[dns.zone.Zone] = (),
        *,
        delay: float = 0.0,
        ad: Iterable[str] = (),
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.port = 0
        self.delay = delay
        self.delays: dict[str, float] = {}  # per query name, overrides `delay`
        self.behaviour: dict[Any, str] = {}
        self.ad: set[str] = set(ad)  # names/zones answered with AD; "." means all
        self.queries: list[Query] = []
        self.zones: dict[dns.name.Name, dns.zone.Zone] = {}
        for zone in zones:
            self.add_zone(zone)
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closers: list[Callable[[], Any]] = []

    @property
    def nameserver(self) -> str:
        return f"{self.host}:{self.port}"

    def add_zone(self, zone: dns.zone.Zone | str, origin: str | None = None) -> None:
        """Serve another zone (a Zone, or zone text with `origin` or $ORIGIN)."""
        if isinstance(zone, str):
            zone = load_zone(zone, origin)
        assert zone.origin is not None
        self.zones[zone.origin] = zone

    def resolver(self, lifetime: float = 3.0) -> dns.resolver.Resolver:
        """A dnspython resolver pointed at this server only."""
        res = dns.resolver.Resolver(configure=False)
        res.nameservers = [self.host]
        res.port = self.port
        res.lifetime = lifetime
        res.timeout = lifetime
        return res

    # --- lifecycle -------------------------------------------------------------------------

    def _bind(self) -> tuple[socket.socket, socket.socket]:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(50):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            udp.bind((self.host, 0))
            tcp = socket.socket(family, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((self.host, udp.getsockname()[1]))
            except OSError:
                udp.close()
                tcp.close()
                continue
            return udp, tcp
        raise RuntimeError("no free port for UDP+TCP")

    def start(self) -> DnsServer:
        udp, tcp = self._bind()
        self.port = udp.getsockname()[1]
        ready = threading.Event()

        async def setup() -> None:
            transport, _ = await self._loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), sock=udp
            )
            server = await asyncio.start_server(self._on_tcp, sock=tcp)
            self._closers += [transport.close, server.close]

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(setup())
            self._loop.call_soon(ready.set)
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"dns-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(5):
            raise RuntimeError("DNS server did not start")
        return self

    def stop(self) -> None:
        """Close sockets, cancel pending answers, stop the loop (bounded waits)."""
        if self._thread is None:
            return

        async def shutdown() -> None:
            for close in self._closers:
                close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=2)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=3)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=3)
        if not self._thread.is_alive():
            self._loop.close()
        self._thread = None

    def _spawn(self, coro: Any) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- transports ------------------------------------------------------------------------

    async def _answer_udp(
        self, data: bytes, addr: Any, transport: asyncio.DatagramTransport
    ) -> None:
        wire = await self.respond(data, "udp")
        if wire is not None and not transport.is_closing():
            transport.sendto(wire, addr)

    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        lock = asyncio.Lock()

        async def answer(data: bytes) -> None:
            wire = await self.respond(data, "tcp")
            if wire is not None:
                async with lock:
                    writer.write(len(wire).to_bytes(2, "big") + wire)
                    await writer.drain()

        try:
            while True:
                size = int.from_bytes(await reader.readexactly(2), "big")
                self._spawn(answer(await reader.readexactly(size)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    # --- answering -------------------------------------------------------------------------

    def _lookup(
        self, table: dict[Any, Any], name: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> Any:
        text = name.to_text().lower()
        type_text = dns.rdatatype.to_text(rdtype)
        for key in ((text, type_text), (text.rstrip("."), type_text), text, text.rstrip("."), "*"):
            if key in table:
                return table[key]
        return None

    async def respond(self, data: bytes, transport: str) -> bytes | None:
        """Answer one wire-format query; None means "send nothing"."""
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return None
        if not query.question:
            return None
        question = query.question[0]
        name, rdtype = question.name, question.rdtype
        self.queries.append(Query(name.to_text(), dns.rdatatype.to_text(rdtype), transport))
        action = self._lookup(self.behaviour, name, rdtype)
        delay = self._lookup(self.delays, name, rdtype)
        delay = self.delay if delay is None else delay
        if delay:
            await asyncio.sleep(delay)
        if action == "timeout":
            return None
        if action == "garbage":
            return os.urandom(48)
        response = dns.message.make_response(query)
        if action == "truncate" and transport == "udp":
            response.flags |= dns.flags.TC | dns.flags.AA
            return response.to_wire()
        if action not in (None, "truncate"):
            response.set_rcode(dns.rcode.from_text(str(action).upper()))
        else:
            self._resolve(name, rdtype, response)
        if any(name.is_subdomain(dns.name.from_text(n)) for n in self.ad):
            response.flags |= dns.flags.AD
        max_size = 65535
        if transport == "udp":
            max_size = max(512, query.payload) if query.edns >= 0 else 512
        try:
            return response.to_wire(max_size=max_size)
        except dns.exception.TooBig:
            truncated = dns.message.make_response(query)
            truncated.flags = response.flags | dns.flags.TC
            return truncated.to_wire()

    def _zone_for(self, name: dns.name.Name) -> dns.zone.Zone | None:
        matches = [origin for origin in self.zones if name.is_subdomain(origin)]
        return self.zones[max(matches, key=len)] if matches else None

    @staticmethod
    def _has_below(zone: dns.zone.Zone, name: dns.name.Name) -> bool:
        return any(owner.is_subdomain(name) for owner in zone.nodes)

    def _find_node(self, zone: dns.zone.Zone, name: dns.name.Name) -> Any:
        node = zone.get_node(name)
        if node is not None or self._has_below(zone, name):
            return node
        encloser = name.parent()  # closest encloser, then its wildcard
        while encloser != zone.origin and not self._has_below(zone, encloser):
            encloser = encloser.parent()
        return zone.get_node(dns.name.Name((b"*",) + encloser.labels))

    def _add_soa(self, zone: dns.zone.Zone, response: dns.message.Message) -> None:
        assert zone.origin is not None
        soa = zone.get_rdataset(zone.origin, dns.rdatatype.SOA)
        if soa is not None:
            rrset = _rrset(zone.origin, soa)
            rrset.ttl = min(soa.ttl, soa[0].minimum)  # type: ignore[attr-defined]
            response.authority.append(rrset)

    def _resolve(self, name: dns.name.Name, rdtype: int, response: dns.message.Message) -> None:
        zone = self._zone_for(name)
        if zone is None:
            response.set_rcode(dns.rcode.REFUSED)
            return
        response.flags |= dns.flags.AA
        for _ in range(16):  # CNAME chain limit
            node = self._find_node(zone, name)
            if node is None:
                if not self._has_below(zone, name):
                    response.set_rcode(dns.rcode.NXDOMAIN)
                self._add_soa(zone, response)
                return
            if rdtype == dns.rdatatype.ANY:
                response.answer += [_rrset(name, rds) for rds in node.rdatasets]
                return
            rds = node.get_rdataset(IN, rdtype)
            if rds is not None:
                response.answer.append(_rrset(name, rds))
                return
            cname = node.get_rdataset(IN, dns.rdatatype.CNAME)
            if cname is None:
                self._add_soa(zone, response)
                return
            response.answer.append(_rrset(name, cname))
            name = cname[0].target
            next_zone = self._zone_for(name)
            if next_zone is None:
                return
            zone = next_zone


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        self.server._spawn(self.server._answer_udp(data, addr, self.transport))


def start_dns_server(
    zone_files: Iterable[str | Path] = (),
    zones: dict[str, str] | None = None,
    **kw: Any,
) -> DnsServer:
    """Start a server; relative `zone_files` are looked up in ``tests/zones/``."""
    loaded = [load_zone_file(ZONES_DIR / path) for path in zone_files]
    loaded += [load_zone(text, origin) for origin, text in (zones or {}).items()]
    return DnsServer(loaded, **kw).start()


DnsServerFactory = Callable[..., DnsServer]


@pytest.fixture
def dns_server() -> Iterator[DnsServerFactory]:
    """Factory: ``dns_server(zone_files=[...], zones={origin: text}, delay=0.0, ad=(), host=...)``.

    With neither `zone_files` nor `zones`, serves ``example.test.zone``. Stopped at test end.
    """
    servers: list[DnsServer] = []

    def factory(
        zone_files: Iterable[str | Path] | None = None,
        zones: dict[str, str] | None = None,
        **kw: Any,
    ) -> DnsServer:
        if zone_files is None:
            zone_files = () if zones else ("example.test.zone",)
        server = start_dns_server(zone_files, zones, **kw)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()
