"""Direct to MX, TLS is opportunistic as MTAs do it (RFC 7435; Postfix "may", swaks
--tls-optional): an untrusted certificate still delivers, with a warning finding; --tls-verify
makes it a failure (issue 14)."""

from __future__ import annotations

import json
import shutil
import subprocess


def _direct(dns, server, *extra: str) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    return ("send", "--nameserver", dns.nameserver, "--port", str(server.port), "--timeout", "5",
            "-f", "alice@example.test", "-t", "bob@send-nomx.test", *extra)


def test_untrusted_certificate_at_the_mx_still_delivers_with_a_warning(cli, dns_server, smtp_server) -> None:  # type: ignore[no-untyped-def]
    dns = dns_server(zone_files=["send-nomx.zone"])
    server = smtp_server("starttls")  # its CA is not trusted here: no --cafile
    code, out, err = cli(*_direct(dns, server), "--json")
    assert code == 0, err
    doc = json.loads(out)
    ids = {f["id"]: f for f in doc["findings"]}
    assert ids["tls.opportunistic"]["status"] == "warn"
    assert "--tls-verify" in ids["tls.opportunistic"]["fix"]
    assert doc["facts"]["tls"]["verified"] is False
    assert any("verification off: opportunistic" in e["line"] for e in doc["facts"]["transcript"])
    assert len(server.messages) == 1 and server.messages[0].tls


def test_tls_verify_makes_it_a_failure(cli, dns_server, smtp_server) -> None:  # type: ignore[no-untyped-def]
    dns = dns_server(zone_files=["send-nomx.zone"])
    server = smtp_server("starttls")
    code, _, err = cli(*_direct(dns, server, "--tls-verify"))
    assert code == 3
    assert "certificate" in err
    assert server.messages == []


def test_trusted_certificate_has_no_opportunistic_warning(cli, dns_server, smtp_server, tls_certs) -> None:  # type: ignore[no-untyped-def]
    dns = dns_server(zone_files=["send-nomx.zone"])
    server = smtp_server("starttls", cert=tls_certs.issue("mx-nomx", "send-nomx.test"))
    code, out, err = cli(*_direct(dns, server, "--cafile", server.ca_path, "--json"))
    assert code == 0, err
    ids = [f["id"] for f in json.loads(out)["findings"]]
    assert "tls.ok" in ids and "tls.opportunistic" not in ids


def test_tls_verify_with_insecure_is_a_usage_error(cli) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("send", "--tls-verify", "--insecure", "-f", "a@example.test",
                       "-t", "b@example.test")
    assert code == 2 and "contradict" in err


def test_swaks_tls_optional_agrees(smtp_server) -> None:  # type: ignore[no-untyped-def]
    """The peer the behaviour copies: swaks delivers over unverified TLS the same way."""
    swaks = shutil.which("swaks")
    if swaks is None:
        from tests.servers.postfix import interop_unavailable

        interop_unavailable("swaks is not installed")
    server = smtp_server("starttls")
    done = subprocess.run([str(swaks), "--server", f"127.0.0.1:{server.port}", "--tls-optional",
                           "--from", "a@example.test", "--to", "b@example.test",
                           "--timeout", "5"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout[-2000:]
    assert len(server.messages) == 1 and server.messages[0].tls

