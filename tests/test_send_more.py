"""send against servers that need what the stock fixture lacks: OAUTHBEARER (RFC 7628), client
certificates (mutual TLS) and REQUIRETLS (RFC 8689)."""

from __future__ import annotations

import json

import pytest

from tests.servers.scripted_peer import Expect, ExpectData, Send, StartTLS

TOKEN = "ya29.bearer-0123456789abcdef"
BASE = ("-f", "alice@example.test", "-t", "bob@example.test")


@pytest.fixture
def run(cli):
    return lambda *args: cli("send", *args)


def test_oauthbearer_is_preferred_when_offered_and_a_bad_token_fails(run, smtp_server, tmp_path):
    server = smtp_server("starttls", oauth_tokens={"bob": TOKEN})
    tok = tmp_path / "token"
    tok.write_text(TOKEN + "\n")
    target = ("-s", f"127.0.0.1:{server.port}", "--tls", "starttls", "--cafile", server.ca_path)
    code, out, err = run(*target, "-u", "bob", "--oauth-token-file", str(tok), *BASE, "--json")
    assert code == 0, err
    assert json.loads(out)["facts"]["auth"]["mechanism"] == "OAUTHBEARER"
    assert server.messages[0].auth_user == "bob"
    assert TOKEN not in out
    tok.write_text("expired-token\n")
    code, out, _ = run(*target, "-u", "bob", "--auth", "OAUTHBEARER",
                       "--oauth-token-file", str(tok), *BASE)
    assert code == 5 and "auth.failed" in out
    assert len(server.messages) == 1


def test_client_certificate_mutual_tls(run, smtp_server, tls_certs):
    client = tls_certs.issue("client", "client.example.test")
    server = smtp_server("starttls", client_ca=str(tls_certs.ca_path))
    target = ("-s", f"127.0.0.1:{server.port}", "--tls", "starttls",
              "--cafile", str(tls_certs.ca_path))
    code, _, err = run(*target, "--client-cert", str(client.cert_path),
                       "--client-key", str(client.key_path), *BASE)
    assert code == 0, err
    assert server.messages and server.messages[0].tls
    # Without the certificate the server ends the handshake: could not complete (3).
    code, _, err = run(*target, *BASE)
    assert code == 3 and err.startswith("smtpcli: ") and len(err.strip().splitlines()) == 1


def test_unreadable_client_certificate_is_a_usage_error(run, tmp_path):
    bad = tmp_path / "cert.pem"
    bad.write_text("not a certificate")
    code, _, err = run("-s", "127.0.0.1:1", "--tls", "implicit", "--client-cert", str(bad), *BASE)
    assert code == 2 and "cannot load client certificate" in err


def _requiretls_script(context, *, advertise: bool):
    ext = b"250-STARTTLS\r\n250 REQUIRETLS\r\n" if advertise else b"250 STARTTLS\r\n"
    after = b"250-mx.example.test\r\n250 REQUIRETLS\r\n" if advertise else b"250 mx.example.test\r\n"
    return [
        Send(b"220 mx.example.test ESMTP\r\n"), Expect(b"EHLO"), Send(b"250-mx.example.test\r\n" + ext),
        Expect(b"STARTTLS"), Send(b"220 go ahead\r\n"), StartTLS(context),
        Expect(b"EHLO"), Send(after),
        Expect(b"MAIL"), Send(b"250 ok\r\n"), Expect(b"RCPT"), Send(b"250 ok\r\n"),
        Expect(b"DATA"), Send(b"354 go\r\n"), ExpectData(), Send(b"250 2.0.0 queued as R1\r\n"),
        Expect(b"QUIT"), Send(b"221 bye\r\n"),
    ]


def test_requiretls_goes_on_mail_from_over_tls(run, scripted_peer, tls_certs):
    peer = scripted_peer(_requiretls_script(tls_certs.valid.server_context(), advertise=True),
                         repeat=False)
    code, _, err = run("-s", f"127.0.0.1:{peer.port}", "--tls", "starttls", "--cafile",
                       str(tls_certs.ca_path), "--requiretls", *BASE)
    assert code == 0, err
    mail = next(line for line in peer.received if line.startswith(b"MAIL FROM"))
    assert mail.rstrip(b"\r\n").endswith(b" REQUIRETLS")


def test_requiretls_not_advertised_is_an_error_before_mail(run, scripted_peer, tls_certs):
    peer = scripted_peer(_requiretls_script(tls_certs.valid.server_context(), advertise=False),
                         repeat=False)
    code, _, err = run("-s", f"127.0.0.1:{peer.port}", "--tls", "starttls", "--cafile",
                       str(tls_certs.ca_path), "--requiretls", *BASE)
    assert code == 3 and "REQUIRETLS" in err
    assert not any(line.startswith(b"MAIL") for line in peer.received)
