"""``localhost`` is always loopback and never asked of DNS (RFC 6761 6.3), even with
--nameserver or SMTPCLI_NAMESERVER set (issue 14)."""

from __future__ import annotations

import pytest

from smtpcli.smtp.target import loopback_addresses


def test_loopback_names() -> None:
    assert loopback_addresses("localhost") == ("127.0.0.1", "::1")
    assert loopback_addresses("LocalHost.") == ("127.0.0.1", "::1")
    assert loopback_addresses("mail.localhost", 4) == ("127.0.0.1",)
    assert loopback_addresses("localhost.example.org") is None


def _asked_localhost(dns) -> list[str]:  # type: ignore[no-untyped-def]
    return [q.qname for q in dns.queries if "localhost" in q.qname.lower()]


def test_send_to_localhost_with_a_nameserver(cli, smtp_server, dns_server) -> None:  # type: ignore[no-untyped-def]
    dns = dns_server()
    server = smtp_server("plain")
    code, _, err = cli("send", "--server", f"localhost:{server.port}", "--nameserver",
                       dns.nameserver, "--tls", "none", "--timeout", "5",
                       "-f", "a@example.test", "-t", "b@example.test")
    assert code == 0, err
    assert len(server.messages) == 1
    assert _asked_localhost(dns) == []


def test_send_to_localhost_with_nameserver_from_the_environment(cli, smtp_server, dns_server,  # type: ignore[no-untyped-def]
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    dns = dns_server()
    monkeypatch.setenv("SMTPCLI_NAMESERVER", dns.nameserver)
    server = smtp_server("plain")
    code, _, err = cli("send", "--server", f"localhost:{server.port}", "--tls", "none",
                       "--timeout", "5", "-f", "a@example.test", "-t", "b@example.test")
    assert code == 0, err
    assert _asked_localhost(dns) == []


def test_probe_localhost_with_a_nameserver(cli, smtp_server, dns_server) -> None:  # type: ignore[no-untyped-def]
    dns = dns_server(zone_files=["probe-multi.zone", "probe-ptr.zone"])
    server = smtp_server("plain")
    code, out, err = cli("probe", f"localhost:{server.port}", "-4", "--nameserver",
                         dns.nameserver, "--no-tls-versions", "--timeout", "5", "--json")
    assert code in (0, 1), out + err
    assert _asked_localhost(dns) == []
    assert '"address": "127.0.0.1"' in out


def test_send_to_localhost_ipv4_only(cli, smtp_server) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("plain")
    code, _, err = cli("send", "--server", f"localhost:{server.port}", "-4", "--tls", "none",
                       "--timeout", "5", "-f", "a@example.test", "-t", "b@example.test")
    assert code == 0, err
    assert len(server.messages) == 1
