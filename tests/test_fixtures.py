"""The test servers themselves work, checked with real clients (smtplib, sockets, dnspython)."""

from __future__ import annotations

import base64
import concurrent.futures
import smtplib
import socket
import ssl
import time

import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import dns.resolver
import pytest

from tests.servers.certs import TlsCerts
from tests.servers.dns_fixture import EXAMPLE_TEST_DKIM_KEY_PEM
from tests.servers.scripted_peer import (
    Close,
    Expect,
    Reset,
    Send,
    SendForever,
    Sleep,
    StartTLS,
    smtp_greeting_script,
)

MSG = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nbody\r\n.dot\r\n"

# --- certificates -------------------------------------------------------------------------


def _handshake(certs: TlsCerts, which: str, server_name: str = "localhost") -> None:
    files = getattr(certs, which)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server_ctx = files.server_context()

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(serve)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
                with certs.client_context().wrap_socket(raw, server_hostname=server_name):
                    pass
        finally:
            listener.close()


def test_certs(tls_certs: TlsCerts) -> None:
    _handshake(tls_certs, "valid")
    _handshake(tls_certs, "valid", "mail.example.test")
    for bad, reason in [
        ("wrong_host", "mismatch"),
        ("expired", "expired"),
        ("not_yet_valid", "not yet valid"),
        ("self_signed", "self-signed"),
    ]:
        with pytest.raises(ssl.SSLCertVerificationError, match=reason):
            _handshake(tls_certs, bad)
    assert tls_certs.self_signed.ca_path == tls_certs.self_signed.cert_path
    assert tls_certs.valid.ca_path == tls_certs.ca_path


# --- SMTP ---------------------------------------------------------------------------------


def test_smtp_plain_records_message(smtp_server) -> None:
    server = smtp_server()
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.ehlo("client.example.test")
        assert client.has_extn("smtputf8")
        assert not client.has_extn("starttls")
        client.sendmail("a@example.test", ["b@example.test"], MSG, mail_options=["BODY=8BITMIME"])
    [msg] = server.messages
    assert msg.mail_from == "a@example.test"
    assert msg.rcpt_tos == ["b@example.test"]
    assert msg.mail_options == [f"SIZE={len(MSG)}", "BODY=8BITMIME"]
    assert msg.content == MSG  # dot-unstuffed, exact
    assert (msg.tls, msg.auth_user, msg.helo) == (False, None, "client.example.test")


def test_smtp_starttls_and_auth(smtp_server) -> None:
    server = smtp_server("starttls", users={"alice": "s3cret"}, require_starttls=True)
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.ehlo()
        assert client.has_extn("starttls") and not client.has_extn("auth")
        code, _ = client.mail("a@example.test")
        assert code == 530  # require_starttls
        client.starttls(context=ssl.create_default_context(cafile=server.ca_path))
        client.ehlo()
        assert set(client.esmtp_features["auth"].split()) == {"CRAM-MD5", "LOGIN", "PLAIN"}
        client.login("alice", "s3cret")
        client.sendmail("a@example.test", ["b@example.test"], MSG)
    [msg] = server.messages
    assert (msg.tls, msg.auth_user) == (True, "alice")


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_smtp_auth_mechanisms(smtp_server, mechanism: str) -> None:
    server = smtp_server(users={"bob": "pw"})
    method = {"PLAIN": "auth_plain", "LOGIN": "auth_login", "CRAM-MD5": "auth_cram_md5"}
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.ehlo()
        client.user, client.password = "bob", "wrong"
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.auth(mechanism, getattr(client, method[mechanism]))
        client.user, client.password = "bob", "pw"
        assert client.auth(mechanism, getattr(client, method[mechanism]))[0] == 235
        client.sendmail("a@example.test", ["b@example.test"], MSG)
    assert server.messages[0].auth_user == "bob"


def test_smtp_xoauth2(smtp_server) -> None:
    server = smtp_server(oauth_tokens={"carol@example.test": "tok"})
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.ehlo()
        assert client.esmtp_features["auth"].split() == ["OAUTHBEARER", "XOAUTH2"]
        bad = base64.b64encode(b"user=carol@example.test\x01auth=Bearer nope\x01\x01").decode()
        code, _ = client.docmd("AUTH", f"XOAUTH2 {bad}")
        assert code == 334
        assert client.docmd("")[0] == 535
        good = base64.b64encode(b"user=carol@example.test\x01auth=Bearer tok\x01\x01").decode()
        assert client.docmd("AUTH", f"XOAUTH2 {good}")[0] == 235


def test_smtp_implicit_tls(smtp_server) -> None:
    server = smtp_server("implicit", users={"alice": "pw"})
    ctx = ssl.create_default_context(cafile=server.ca_path)
    with smtplib.SMTP_SSL(server.host, server.port, context=ctx, timeout=5) as client:
        client.login("alice", "pw")
        client.sendmail("a@example.test", ["b@example.test"], MSG)
    assert (server.messages[0].tls, server.messages[0].auth_user) == (True, "alice")


def test_smtp_auth_requires_tls_when_asked(smtp_server) -> None:
    server = smtp_server("plain", users={"alice": "pw"}, auth_require_tls=True)
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        assert client.docmd("AUTH", "PLAIN AGFsaWNlAHB3")[0] == 538


def test_smtp_rejects_and_ipv6(smtp_server) -> None:
    server = smtp_server(
        reject_rcpt={"bad@example.test": "550 5.1.1 No such user"},
        reject_mail={"spam@example.test": "553 5.7.1 Go away"},
    )
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.ehlo()
        assert client.mail("spam@example.test")[0] == 553
        assert client.mail("a@example.test")[0] == 250
        assert client.rcpt("bad@example.test") == (550, b"5.1.1 No such user")
        assert client.rcpt("good@example.test")[0] == 250
        client.data(MSG)
    assert server.messages[0].rcpt_tos == ["good@example.test"]
    server.stop()
    server.stop()  # idempotent
    if socket.has_ipv6:
        try:
            v6 = smtp_server(host="::1")
        except OSError:
            pytest.skip("no ::1")
        with smtplib.SMTP(v6.host, v6.port, timeout=5) as client:
            assert client.noop()[0] == 250


# --- scripted peer ------------------------------------------------------------------------


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_peer_script_and_repeat(scripted_peer) -> None:
    peer = scripted_peer(smtp_greeting_script())
    for _ in range(2):  # each connection runs the script anew
        with smtplib.SMTP(peer.host, peer.port, timeout=5) as client:
            client.sendmail("a@example.test", ["b@example.test"], MSG)
    assert peer.connections == 2 and not peer.errors
    assert peer.received[0].startswith(b"ehlo ")
    assert peer.received[1] == b"mail FROM:<a@example.test>\r\n"
    assert peer.data_blocks[0] == MSG.replace(b"\r\n.dot", b"\r\n..dot") + b".\r\n"
    assert peer.transcripts[0] == peer.transcripts[1]


def test_peer_close_reset_sleep(scripted_peer) -> None:
    peer = scripted_peer([Send(b"220 hi\r\n"), Expect(b"EHLO"), Close()], repeat=False)
    with socket.create_connection(peer.address, timeout=3) as sock:
        assert sock.recv(100) == b"220 hi\r\n"
        sock.sendall(b"EHLO x\r\n")
        assert _read_until(sock, b"never") == b""
    with socket.create_connection(peer.address, timeout=3) as sock:
        assert sock.recv(100) == b""  # repeat=False
    assert peer.received == [b"EHLO x\r\n"]

    rst = scripted_peer([Sleep(0.05), Reset()])
    with socket.create_connection(rst.address, timeout=3) as sock:
        with pytest.raises(ConnectionResetError):
            sock.recv(100)


def test_peer_send_forever_and_starttls(scripted_peer, tls_certs: TlsCerts) -> None:
    endless = scripted_peer([SendForever(b"250-more\r\n")])
    with socket.create_connection(endless.address, timeout=3) as sock:
        data = b""
        while len(data) < 5000:
            data += sock.recv(4096)
        assert data.startswith(b"250-more\r\n250-more\r\n")

    tls = scripted_peer(
        [
            Send(b"220 hi\r\n"),
            Expect(b"STARTTLS"),
            Send(b"220 go ahead\r\n"),
            StartTLS(tls_certs.valid.server_context()),
            Expect(b"EHLO"),
            Send(b"250 secure\r\n"),
        ]
    )
    with socket.create_connection(tls.address, timeout=3) as raw:
        assert raw.recv(100) == b"220 hi\r\n"
        raw.sendall(b"STARTTLS\r\n")
        assert raw.recv(100) == b"220 go ahead\r\n"
        with tls_certs.client_context().wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(b"EHLO me\r\n")
            assert sock.recv(100) == b"250 secure\r\n"
    assert tls.received == [b"STARTTLS\r\n", b"EHLO me\r\n"]


def test_peer_stops_with_client_hanging(scripted_peer) -> None:
    peer = scripted_peer([Expect(b"NEVER", timeout=60)])
    sock = socket.create_connection(peer.address, timeout=3)
    start = time.monotonic()
    peer.stop()
    assert time.monotonic() - start < 4
    sock.close()


# --- DNS ----------------------------------------------------------------------------------


def test_dns_answers(dns_server) -> None:
    server = dns_server()
    res = server.resolver()
    mx = res.resolve("example.test", "MX")
    assert mx.response.flags & dns.flags.AA
    assert sorted((r.preference, r.exchange.to_text()) for r in mx) == [
        (10, "mx1.example.test."),
        (20, "mx2.example.test."),
    ]
    assert res.resolve("example.test", "TXT")[0].strings == (b"v=spf1 mx -all",)
    assert res.resolve("mail.example.test", "AAAA")[0].address == "::1"  # via CNAME
    dkim = b"".join(res.resolve("selector1._domainkey.example.test", "TXT")[0].strings)
    assert dkim.startswith(b"v=DKIM1; k=rsa; p=MIIB") and EXAMPLE_TEST_DKIM_KEY_PEM
    with pytest.raises(dns.resolver.NXDOMAIN):
        res.resolve("nope.example.test", "A")
    with pytest.raises(dns.resolver.NoAnswer):
        res.resolve("mx1.example.test", "MX")
    with pytest.raises(dns.resolver.NoAnswer):  # empty non-terminal
        res.resolve("_domainkey.example.test", "TXT")
    refused = dns.query.udp(dns.message.make_query("example.com", "A"), "127.0.0.1", 2, server.port)
    assert refused.rcode() == dns.rcode.REFUSED
    assert ("example.test.", "MX", "udp") in server.queries


def test_dns_inline_zone_all_types(dns_server) -> None:
    server = dns_server(
        zones={
            "other.test": f"""
                @ 60 IN TXT "x"
                @ 60 IN SPF "v=spf1 -all"
                _25._tcp.mx 60 IN TLSA 3 1 1 {"ab" * 32}
                *.wild 60 IN A 192.0.2.1
                big 60 IN TXT """
            + " ".join(f'"{"x" * 200}"' for _ in range(20)),
            "0.0.127.in-addr.arpa": "1 IN PTR mx1.example.test.",
        },
        zone_files=["example.test.zone"],
        ad=["other.test"],
    )
    res = server.resolver()
    assert res.resolve("other.test", "SPF")[0].strings == (b"v=spf1 -all",)
    assert res.resolve("other.test", "SPF").response.flags & dns.flags.AD
    assert not res.resolve("example.test", "MX").response.flags & dns.flags.AD
    assert res.resolve("_25._tcp.mx.other.test", "TLSA")[0].cert == bytes.fromhex("ab" * 32)
    assert res.resolve("a.wild.other.test", "A")[0].address == "192.0.2.1"
    assert res.resolve("other.test", "SOA")[0].serial == 1  # synthesized
    assert res.resolve_address("127.0.0.1")[0].target.to_text() == "mx1.example.test."
    big = res.resolve("big.other.test", "TXT")  # 4 KB: truncated over UDP, then TCP
    assert len(b"".join(big[0].strings)) == 4000
    assert [q.transport for q in server.queries if q.qname == "big.other.test."] == ["udp", "tcp"]


def test_dns_delay_is_parallel(dns_server) -> None:
    server = dns_server(delay=0.3)
    names = [f"mx{i % 2 + 1}.example.test" for i in range(5)]
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        list(pool.map(lambda n: server.resolver().resolve(n, "A"), names))
    assert 0.3 <= time.monotonic() - start < 1.0


def test_dns_hostile_behaviours(dns_server) -> None:
    server = dns_server()
    res = server.resolver(lifetime=1.0)
    server.behaviour["mx1.example.test."] = "servfail"
    server.behaviour["mx2.example.test"] = "refused"
    server.behaviour[("example.test.", "TXT")] = "timeout"
    server.behaviour["_dmarc.example.test."] = "garbage"
    server.behaviour["example.test."] = "truncate"
    q = dns.message.make_query
    assert dns.query.udp(q("mx1.example.test", "A"), "127.0.0.1", 2, server.port).rcode() == 2
    assert dns.query.udp(q("mx2.example.test", "A"), "127.0.0.1", 2, server.port).rcode() == 5
    with pytest.raises(dns.exception.Timeout):
        dns.query.udp(q("example.test", "TXT"), "127.0.0.1", 0.3, server.port)
    with pytest.raises(dns.exception.DNSException):
        dns.query.udp(q("_dmarc.example.test", "TXT"), "127.0.0.1", 1, server.port)
    truncated = dns.query.udp(q("example.test", "MX"), "127.0.0.1", 2, server.port)
    assert truncated.flags & dns.flags.TC and not truncated.answer
    assert len(res.resolve("example.test", "MX")) == 2  # resolver falls back to TCP
    with pytest.raises(dns.resolver.NoNameservers):
        res.resolve("mx1.example.test", "A")
    del server.behaviour["mx1.example.test."]
    assert res.resolve("mx1.example.test", "A")[0].address == "127.0.0.1"
