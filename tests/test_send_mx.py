"""Direct delivery (no --server): MX hosts through the DNS fixture, fallback, null MX, implicit MX."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def run(cli):
    return lambda *args: cli("send", *args)


def direct(dns, server, domain: str, *extra: str) -> tuple[str, ...]:
    return ("--nameserver", dns.nameserver, "--port", str(server.port), "--tls", "none",
            "--timeout", "3", "-f", "alice@example.test", "-t", f"bob@{domain}", *extra)


def test_mx_fallback_to_next_host(run, dns_server, smtp_server) -> None:
    dns = dns_server(zone_files=["send-fallback.zone"])
    server = smtp_server("plain")
    code, out, err = run(*direct(dns, server, "send-fallback.test"), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert [m["host"] for m in doc["facts"]["mx"]] == ["mx1.send-fallback.test",
                                                      "mx2.send-fallback.test"]
    attempts = doc["facts"]["attempts"]
    assert [a["outcome"] for a in attempts] == ["failed", "delivered"]
    assert "127.0.0.2" in attempts[0]["reason"]
    assert doc["facts"]["target"]["host"] == "mx2.send-fallback.test"
    assert server.messages[0].rcpt_tos == ["bob@send-fallback.test"]


def test_mx_fallback_on_4xx(run, dns_server, smtp_server) -> None:
    # Both MX names point at loopback; make mx1 the only one by zone and let the server 4xx.
    zone = """$ORIGIN send-4xx.test.
$TTL 300
@ IN SOA ns1 hostmaster 1 3600 600 86400 300
@ IN NS ns1
ns1 IN A 127.0.0.1
@ IN MX 10 mx1
@ IN MX 20 mx2
mx1 IN A 127.0.0.1
mx2 IN A 127.0.0.1
"""
    dns = dns_server(zones={"send-4xx.test.": zone})
    server = smtp_server("plain", reject_rcpt={"bob@send-4xx.test": "451 4.3.0 try later"})
    code, out, _ = run(*direct(dns, server, "send-4xx.test"), "--json")
    doc = json.loads(out)
    assert code == 4
    assert [a["outcome"] for a in doc["facts"]["attempts"]] == ["rejected", "rejected"]


def test_null_mx_stops(run, dns_server, smtp_server) -> None:
    dns = dns_server(zone_files=["send-nullmx.zone"])
    server = smtp_server("plain")
    code, _, err = run(*direct(dns, server, "send-nullmx.test"))
    assert code == 5
    assert "null MX (RFC 7505)" in err and len(err.strip().splitlines()) == 1
    assert server.messages == []


def test_no_mx_uses_a_record(run, dns_server, smtp_server) -> None:
    dns = dns_server(zone_files=["send-nomx.zone"])
    server = smtp_server("plain")
    code, out, err = run(*direct(dns, server, "send-nomx.test"), "--json")
    assert code == 0, err
    mx = json.loads(out)["facts"]["mx"]
    assert mx == [{"host": "send-nomx.test", "preference": 0, "addresses": ["127.0.0.1"],
                   "implicit": True}]
    assert len(server.messages) == 1


def test_mx_lookup_failure_is_not_absent(run, dns_server, smtp_server) -> None:
    dns = dns_server(zone_files=["send-nomx.zone"])
    dns.behaviour["send-nomx.test"] = "servfail"
    server = smtp_server("plain")
    code, _, err = run(*direct(dns, server, "send-nomx.test"))
    assert code == 3 and "MX lookup for send-nomx.test failed" in err
    assert server.messages == []


def test_nxdomain(run, dns_server, smtp_server) -> None:
    dns = dns_server(zone_files=["send-nomx.zone"])
    server = smtp_server("plain")
    code, _, err = run(*direct(dns, server, "nothere.send-nomx.test"))
    assert code == 5 and "does not exist" in err


def test_server_name_resolved_through_nameserver(run, dns_server, smtp_server) -> None:
    dns = dns_server(zone_files=["send-fallback.zone"])
    server = smtp_server("plain")
    code, out, err = run("--nameserver", dns.nameserver, "-s",
                         f"mx2.send-fallback.test:{server.port}", "--tls", "none",
                         "-f", "a@example.test", "-t", "b@example.test", "--json")
    assert code == 0, err
    assert json.loads(out)["facts"]["target"]["addresses"] == ["127.0.0.1"]
