"""The DNS layer against the loopback DNS fixture: answers, absence, failures, cache."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtpcli.dnsq.client import DnsClient, LookupState
from smtpcli.dnsq.resolver import Nameserver, ResolverConfig, make_resolver, parse_nameserver
from smtpcli.errors import UsageError

ZONE = """
$ORIGIN dnsq.test.
$TTL 300
@   IN SOA ns.dnsq.test. hostmaster.dnsq.test. 1 3600 600 86400 300
@   IN NS  ns.dnsq.test.
ns  IN A   127.0.0.1
@   IN MX  10 mx.dnsq.test.
mx  IN A   127.0.0.1
@   IN TXT "v=spf1 " "-all"
alias IN CNAME mx.dnsq.test.
bad IN A 127.0.0.9
slow IN A 127.0.0.10
"""


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1", Nameserver("127.0.0.1", 53)),
    ("127.0.0.1:5353", Nameserver("127.0.0.1", 5353)),
    ("::1", Nameserver("::1", 53)),
    ("[::1]:5300", Nameserver("::1", 5300)),
    ("[2001:db8::1]", Nameserver("2001:db8::1", 53)),
])
def test_parse_nameserver(text: str, expected: Nameserver) -> None:
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize("text", ["ns.example", "127.0.0.1:0", "127.0.0.1:99999", "[::1", "1.2.3.4:x", ""])
def test_parse_nameserver_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_nameserver(text)


@given(st.text(max_size=60))
def test_parse_nameserver_never_crashes(text: str) -> None:
    try:
        parse_nameserver(text)
    except UsageError:
        pass


def _client(server, timeout: float = 1.0, retries: int = 0) -> DnsClient:
    return DnsClient(ResolverConfig.from_options([server.nameserver], timeout, retries))


def test_answers_absence_and_failure_are_distinct(dns_server) -> None:
    server = dns_server(zones={"dnsq.test.": ZONE})
    server.behaviour["bad.dnsq.test."] = "servfail"
    server.behaviour["slow.dnsq.test."] = "timeout"
    client = _client(server, timeout=0.5)

    async def ask():
        return await client.query_many([
            ("dnsq.test", "MX"), ("dnsq.test", "TXT"), ("nothere.dnsq.test", "A"),
            ("dnsq.test", "AAAA"), ("bad.dnsq.test", "A"), ("slow.dnsq.test", "A"),
            ("alias.dnsq.test", "A"), ("outside.invalid", "A"),
        ])

    mx, txt, nx, nodata, servfail, timeout, alias, refused = asyncio.run(ask())
    assert mx.ok and mx.texts == ["10 mx.dnsq.test."]
    assert txt.texts == ["v=spf1 -all"]  # character-strings joined (RFC 7208 3.3)
    assert nx.state is LookupState.NXDOMAIN and nx.absent
    assert nodata.state is LookupState.NODATA and nodata.absent
    for failed in (servfail, timeout, refused):
        assert failed.failed and not failed.absent and failed.error
    assert timeout.error == "timed out"
    assert alias.ok and alias.canonical_name == "mx.dnsq.test"


def test_each_question_is_asked_once_per_run(dns_server) -> None:
    server = dns_server(zones={"dnsq.test.": ZONE}, delay=0.2)
    client = _client(server)

    async def ask():
        return await asyncio.gather(*(client.query("dnsq.test", "MX") for _ in range(5)),
                                    client.query("DNSQ.test.", "mx"))

    results = asyncio.run(ask())
    assert all(r.ok for r in results)
    assert client.questions == 1
    assert [q for q in server.queries if str(q[0]).lower() == "dnsq.test."].__len__() == 1
    assert client.cached("dnsq.test", "MX") is results[0]


def test_sync_resolver_uses_configured_port(dns_server) -> None:
    server = dns_server(zones={"dnsq.test.": ZONE})
    res = make_resolver(ResolverConfig.from_options([server.nameserver], 1.0))
    answer = res.resolve("mx.dnsq.test", "A")
    assert [r.to_text() for r in answer] == ["127.0.0.1"]


def test_resolvers_do_not_load_dnspythons_https_stack() -> None:
    import subprocess
    import sys

    code = (
        "from smtpcli.dnsq.resolver import ResolverConfig, make_async_resolver, make_resolver\n"
        "make_async_resolver(ResolverConfig()); make_resolver(ResolverConfig())\n"
        "import asyncio\nfrom smtpcli.dnsq.client import DnsClient\n"
        "client = DnsClient(ResolverConfig.from_options(['127.0.0.1:9'], 0.2, 0))\n"
        "asyncio.run(client.query('example.test', 'A'))\n"
        "import sys; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('httpx', 'httpx2', 'httpcore', 'httpcore2')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
