"""A DNS fixture with answers the stock one (tests/servers/dns_fixture.py) cannot give, and the
``hostile.test`` zone whose names each misbehave in one way.

Extra behaviours (``server.behaviour[name] = ...``, as in the stock fixture):

* ``"wrong-id"``: the right answer under another message ID (RFC 1035 4.1.1: must be ignored).
* ``"wrong-question"``: an answer for a different name than was asked.
* ``"nxdomain-with-answer"``: rcode NXDOMAIN yet an answer section (which must not be trusted).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from tests.servers.dns_fixture import DnsServer, load_zone

# One name per misbehaviour; the MX of "ok"-like names points at 127.0.0.1 (send/probe --port).
ZONE = "\n".join([
    "$ORIGIN hostile.test.",
    "$TTL 300",
    "@ SOA ns.hostile.test. admin.hostile.test. 1 3600 600 86400 60",
    "@ NS ns.hostile.test.",
    "ns A 127.0.0.1",
    "mx.ok A 127.0.0.1",
    *(f"{name} MX 10 mx.ok.hostile.test." for name in (
        "servfail", "refused", "timeout", "garbage", "formerr", "wrong-id", "wrong-question",
        "nxdomain-with-answer", "truncate")),
    # The MX host's own lookups fail, or go nowhere.
    "mx-host-servfail MX 10 mx.mx-host-servfail.hostile.test.",
    "mx.mx-host-servfail A 127.0.0.1",
    "mx-cname-loop MX 10 a.mx-cname-loop.hostile.test.",
    "a.mx-cname-loop CNAME b.mx-cname-loop.hostile.test.",
    "b.mx-cname-loop CNAME a.mx-cname-loop.hostile.test.",
    "cname-loop CNAME cname-loop2.hostile.test.",
    "cname-loop2 CNAME cname-loop.hostile.test.",
    # An IP literal where a host name belongs (RFC 5321 5.1: MX names a host, not an address).
    "mx-ip-literal MX 10 127.0.0.1.",
    # RFC 7505 null MX: the domain accepts no mail (send: permanent, exit 5).
    "null-mx MX 0 .",
    # TTL 0 everywhere: must still work (no caching is allowed, nothing else changes).
    "ttl0 0 MX 10 mx.ttl0.hostile.test.",
    "mx.ttl0 0 A 127.0.0.1",
    # A huge MX set: far over 512 bytes, so UDP is truncated and TCP must be used.
    *(f"huge MX {10 + i} mx-{i:02d}-{'x' * 40}.huge.hostile.test." for i in range(40)),
    *(f"mx-{i:02d}-{'x' * 40}.huge A 127.0.0.1" for i in range(40)),
    "",
])

# Reverse DNS of the MX address (probe and check-domain ask), forward-confirmed.
REVERSE = "$ORIGIN 0.0.127.in-addr.arpa.\n$TTL 300\n1 PTR mx.ok.hostile.test.\n"

CUSTOM = ("wrong-id", "wrong-question", "nxdomain-with-answer")


class HostileDnsServer(DnsServer):
    """The stock fixture plus the CUSTOM behaviours."""

    async def respond(self, data: bytes, transport: str) -> bytes | None:
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return await super().respond(data, transport)
        if not query.question:
            return await super().respond(data, transport)
        question = query.question[0]
        action = self._lookup(self.behaviour, question.name, question.rdtype)
        if action not in CUSTOM:
            return await super().respond(data, transport)
        self.behaviour_hits = getattr(self, "behaviour_hits", 0) + 1
        response = dns.message.make_response(query)
        self._resolve(question.name, question.rdtype, response)
        if action == "wrong-id":
            response.id = (query.id + 1) % 65536
        elif action == "wrong-question":
            other = dns.name.from_text("elsewhere.hostile.test.")
            response.question = [dns.rrset.RRset(other, question.rdclass, question.rdtype)]
            response.answer = [dns.rrset.from_text(other, 300, "IN", "A", "127.0.0.9")] \
                if question.rdtype == dns.rdatatype.A else response.answer
        elif action == "nxdomain-with-answer":
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()


@pytest.fixture
def hostile_dns() -> Iterator[HostileDnsServer]:
    """A started HostileDnsServer serving ZONE, each misbehaving name set up; stopped at the end."""
    server = HostileDnsServer([load_zone(ZONE, "hostile.test."),
                               load_zone(REVERSE, "0.0.127.in-addr.arpa.")])
    for name in ("servfail", "refused", "timeout", "garbage", "formerr", "truncate", *CUSTOM):
        server.behaviour[f"{name}.hostile.test"] = name
    server.behaviour["mx.mx-host-servfail.hostile.test"] = "servfail"
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
