"""Address literals as users type them (RFC 5321 4.1.3, Postfix relayhost syntax, swaks):
``[IPv4]``, ``[IPv6]``, ``[IPv6:...]``, with and without port, in every command that reads a
server, listen or nameserver address (issue 14)."""

from __future__ import annotations

import json

import pytest

from smtpcli.dnsq.resolver import parse_nameserver
from smtpcli.errors import UsageError
from smtpcli.server.config import parse_listen
from smtpcli.smtp.target import parse_target

MAIL = ("-f", "a@example.test", "-t", "b@example.test", "--tls", "none", "--timeout", "5")


@pytest.mark.parametrize("text,host,port", [
    ("[127.0.0.1]:2525", "127.0.0.1", 2525), ("[127.0.0.1]", "127.0.0.1", 25),
    ("[::1]:2525", "::1", 2525), ("[::1]", "::1", 25), ("[IPv6:::1]:2525", "::1", 2525),
    ("[ipv6:2001:db8::1]", "2001:db8::1", 25), ("smtp://[IPv6:::1]:26", "::1", 26),
    ("[mx.example.org]:587", "mx.example.org", 587),
])
def test_target_forms(text: str, host: str, port: int) -> None:
    target = parse_target(text)
    assert (target.host, target.port) == (host, port)


@pytest.mark.parametrize("text", ["[IPv6:127.0.0.1]:25", "[::1", "[::1]x", "[]:25",
                                  "[IPv6:nonsense]"])
def test_malformed_literals_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_target(text)


def test_listen_and_nameserver_forms() -> None:
    assert parse_listen("[IPv6:::1]:0") == ("::1", 0)
    assert parse_listen("[127.0.0.1]:2525") == ("127.0.0.1", 2525)
    assert (parse_nameserver("[IPv6:::1]:5353").host, parse_nameserver("[IPv6:::1]").port) == \
        ("::1", 53)


def test_send_to_ipv4_literal_with_port(cli, smtp_server) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("plain")
    code, _, err = cli("send", "--server", f"[127.0.0.1]:{server.port}", *MAIL)
    assert code == 0, err
    assert len(server.messages) == 1


def test_send_to_ipv6_address_literal(cli, smtp_server) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("plain", host="::1")
    code, _, err = cli("send", "--server", f"[IPv6:::1]:{server.port}", *MAIL)
    assert code == 0, err
    assert len(server.messages) == 1


def test_probe_ipv4_literal(cli, smtp_server, dns_server) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("plain")
    dns = dns_server(zone_files=["probe-multi.zone", "probe-ptr.zone"])  # reverse DNS
    code, out, err = cli("probe", f"[127.0.0.1]:{server.port}", "--json", "--timeout", "5",
                         "--no-tls-versions", "--nameserver", dns.nameserver)
    assert code in (0, 1), err
    doc = json.loads(out)
    assert doc["target"].endswith(f"127.0.0.1]:{server.port}") and doc["status"] != "error"


def test_bench_ipv6_literal(cli, smtp_server) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("plain", host="::1")
    code, _, err = cli("bench", f"[IPv6:::1]:{server.port}", "-n", "3", "-c", "1", "--tls",
                       "none", "--json")
    assert code == 0, err
    assert len(server.messages) == 3


def test_check_domain_with_ipv6_literal_nameserver(cli, dns_server) -> None:  # type: ignore[no-untyped-def]
    dns = dns_server(host="::1")
    code, out, err = cli("check-domain", "example.test", "--only", "dmarc", "--json",
                         "--nameserver", f"[IPv6:::1]:{dns.port}")
    assert code in (0, 1), out + err
    assert dns.queries
