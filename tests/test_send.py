"""``smtpcli send`` against the aiosmtpd fixture and the BDAT server: what arrives, byte for byte,
TLS modes and certificate errors, AUTH, recipients, ESMTP extensions, secrets, usage errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.servers.bdat_server import bdat_server  # noqa: F401,F811  (fixture)

PASSWORD = "pa55-Wörd!x"
TOKEN = "ya29.tok-ABCDEFxyz0123456789"


@pytest.fixture
def run(cli):
    return lambda *args: cli("send", *args)


def addr(server) -> str:
    return f"127.0.0.1:{server.port}"


BASE = ("-f", "alice@example.test", "-t", "bob@example.test")


def test_plain_delivery_byte_for_byte(run, smtp_server) -> None:
    server = smtp_server("plain")
    body = "first line\n.leading dot\n..two dots\nlast"
    code, out, err = run("-s", addr(server), "--tls", "none", *BASE, "--subject", "hello",
                         "--body", body, "-H", "X-Test: 1", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["status"] == "info"  # the only note: TLS not used, as asked
    [msg] = server.messages
    assert msg.mail_from == "alice@example.test" and msg.rcpt_tos == ["bob@example.test"]
    head, _, received_body = msg.content.partition(b"\r\n\r\n")
    # Dot-stuffing undone by the server: the body arrives exactly as given, with CRLF.
    assert received_body == b"first line\r\n.leading dot\r\n..two dots\r\nlast\r\n"
    assert b"\r\nSubject: hello\r\n" in head and b"\r\nX-Test: 1" in head + b"\r\n"
    facts = doc["facts"]
    assert facts["recipients"] == [{"address": "bob@example.test", "accepted": True,
                                    "reply": {"code": 250, "text": "OK"}}]
    assert facts["message"]["size"] == len(msg.content)
    assert facts["message"]["message_id"] in head.decode()
    stages = {e["stage"] for e in facts["transcript"]}
    assert {"connect", "banner", "ehlo", "mail", "rcpt", "data", "quit"} <= stages
    assert all(set(e) == {"t", "stage", "dir", "line"} for e in facts["transcript"])
    assert {"connect", "banner", "ehlo", "mail", "rcpt", "data", "total"} <= set(facts["timings"])
    # --tls none was asked for: noted (info), not a warning.
    assert [f["status"] for f in doc["findings"] if f["id"] == "tls.none"] == ["info"]


def test_default_test_message_is_recognisable(run, smtp_server) -> None:
    server = smtp_server("plain")
    code, out, _ = run("-s", addr(server), *BASE)
    assert code == 0
    content = server.messages[0].content
    assert b"This is a test message sent by smtpcli" in content
    assert b"Message-ID: <" in content and b"Date: " in content
    assert "tls.none" in out  # port-default opportunistic mode, no STARTTLS offered: warned


def test_starttls_verified(run, smtp_server) -> None:
    server = smtp_server("starttls")
    code, out, _ = run("-s", addr(server), "--tls", "starttls", "--cafile", server.ca_path,
                       *BASE, "--json")
    assert code == 0
    doc = json.loads(out)
    tls = doc["facts"]["tls"]
    assert tls["verified"] is True and tls["hostname_match"] is True
    assert tls["protocol"].startswith("TLSv1.")
    leaf = tls["chain"][0]
    assert "IP:127.0.0.1" in leaf["sans"] and len(leaf["sha256"]) == 64
    assert server.messages[0].tls is True


def test_starttls_required_but_not_offered(run, smtp_server) -> None:
    server = smtp_server("plain")
    code, _, err = run("-s", addr(server), "--tls", "starttls", *BASE)
    assert code == 3
    assert err.strip().count("\n") == 0 and "does not offer STARTTLS" in err
    assert server.messages == []


def test_implicit_tls_by_url(run, smtp_server) -> None:
    server = smtp_server("implicit")
    code, out, _ = run("-s", f"smtps://127.0.0.1:{server.port}", "--cafile", server.ca_path,
                       *BASE, "--json")
    assert code == 0
    assert json.loads(out)["facts"]["target"]["tls"] == "implicit"
    assert len(server.messages) == 1


@pytest.mark.parametrize("label, finding, words", [
    ("self_signed", "tls.cert-self-signed", "self-signed certificate"),
    ("wrong_host", "tls.hostname-mismatch", "hostname mismatch"),
    ("expired", "tls.cert-expired", "certificate has expired"),
])
def test_certificate_errors(run, smtp_server, tls_certs, label, finding, words) -> None:
    server = smtp_server("starttls", cert=getattr(tls_certs, label))
    code, _, err = run("-s", addr(server), "--cafile", str(tls_certs.ca_path), *BASE)
    assert code == 3
    assert err.startswith("smtpcli: certificate verification failed for 127.0.0.1")
    assert len(err.strip().splitlines()) == 1
    assert server.messages == []
    # JSON: the same failure as a finding with a stable id.
    code, out, _ = run("-s", addr(server), "--cafile", str(tls_certs.ca_path), *BASE, "--json")
    doc = json.loads(out)
    assert code == 3 and doc["exit_code"] == 3
    assert [f["id"] for f in doc["findings"]] == [finding]
    # --insecure: sent, said loudly, and the facts still say why it would not verify.
    code, out, err = run("-s", addr(server), "--cafile", str(tls_certs.ca_path), "--insecure",
                         *BASE, "--json")
    assert code == 0 and "WARNING" in err and "NOT verified" in err
    doc = json.loads(out)
    ids = [f["id"] for f in doc["findings"]]
    assert "tls.verification-off" in ids and finding in ids
    assert doc["facts"]["tls"]["verified"] is False
    assert doc["facts"]["tls"]["verify_error"].startswith(words)  # OpenSSL's words, not jargon
    assert len(server.messages) == 1


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_auth_password_mechanisms(run, smtp_server, tmp_path, mech) -> None:
    server = smtp_server("starttls", users={"bob": PASSWORD})
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    code, out, err = run("-s", addr(server), "--cafile", server.ca_path, "-u", "bob",
                         "--password-file", str(pw), "--auth", mech, *BASE, "--json")
    assert code == 0, err
    assert json.loads(out)["facts"]["auth"]["mechanism"] == mech
    assert server.messages[0].auth_user == "bob"


def test_auth_auto_picks_strongest(run, smtp_server, monkeypatch) -> None:
    server = smtp_server("starttls", users={"bob": PASSWORD})
    monkeypatch.setenv("SMTPCLI_PASSWORD", PASSWORD)
    code, out, _ = run("-s", addr(server), "--cafile", server.ca_path, "-u", "bob", *BASE, "--json")
    assert code == 0
    assert json.loads(out)["facts"]["auth"]["mechanism"] == "CRAM-MD5"


def test_auth_wrong_password_is_permanent(run, smtp_server, monkeypatch) -> None:
    server = smtp_server("starttls", users={"bob": PASSWORD})
    monkeypatch.setenv("SMTPCLI_PASSWORD", "wrong")
    code, out, _ = run("-s", addr(server), "--cafile", server.ca_path, "-u", "bob",
                       "--auth", "PLAIN", *BASE)
    assert code == 5
    assert "auth.failed" in out and "535" in out
    assert server.messages == []


def test_xoauth2_token_file(run, smtp_server, tmp_path) -> None:
    server = smtp_server("starttls", oauth_tokens={"bob": TOKEN})
    tok = tmp_path / "token"
    tok.write_text(TOKEN + "\n")
    code, out, err = run("-s", addr(server), "--cafile", server.ca_path, "-u", "bob",
                         "--auth", "XOAUTH2", "--oauth-token-file", str(tok), *BASE, "--json")
    assert code == 0, err
    assert json.loads(out)["facts"]["auth"]["mechanism"] == "XOAUTH2"
    # A bad token: the server's error challenge is answered and the 535 comes back.
    tok.write_text("bad-token")
    code, out, _ = run("-s", addr(server), "--cafile", server.ca_path, "-u", "bob",
                       "--auth", "XOAUTH2", "--oauth-token-cmd", f"cat {tok}", *BASE)
    assert code == 5


def test_no_password_without_tty_is_usage_error(run, smtp_server, monkeypatch) -> None:
    monkeypatch.delenv("SMTPCLI_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    code, _, err = run("-s", "127.0.0.1:1", "-u", "bob", *BASE)
    assert code == 2 and "no password" in err


def _secret_forms(secret: str, user: str = "bob") -> list[str]:
    forms = [secret]
    for raw in (f"\0{user}\0{secret}", secret, f"user={user}\x01auth=Bearer {secret}\x01\x01"):
        forms.append(base64.b64encode(raw.encode()).decode())
    return forms


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "XOAUTH2"])
def test_secrets_never_shown(run, smtp_server, tmp_path, mech) -> None:
    server = smtp_server("starttls", users={"bob": PASSWORD}, oauth_tokens={"bob": TOKEN})
    f = tmp_path / "secret"
    f.write_text(TOKEN if mech == "XOAUTH2" else PASSWORD)
    secret_opt = "--oauth-token-file" if mech == "XOAUTH2" else "--password-file"
    secret = TOKEN if mech == "XOAUTH2" else PASSWORD
    args = ("-s", addr(server), "--cafile", server.ca_path, "-u", "bob", secret_opt, str(f),
            "--auth", mech, *BASE)
    outputs = []
    for extra in ((), ("-v",), ("--json",), ("--json", "-v")):
        code, out, err = run(*args, *extra)
        assert code == 0, err
        outputs.append(out + err)
    blob = "\n".join(outputs)
    assert "[redacted]" in blob
    for form in _secret_forms(secret):
        assert form not in blob
    # The check can fail: with --show-secrets the AUTH payload does appear.
    code, out, err = run(*args, "-v", "--show-secrets")
    assert code == 0
    assert any(form in out + err for form in _secret_forms(secret)[1:])


def test_rejected_recipients_and_partial(run, smtp_server) -> None:
    server = smtp_server("plain", reject_rcpt={"nobody@example.test": "550 5.1.1 No such user"})
    both = ("-s", addr(server), "--tls", "none", "-f", "alice@example.test",
            "-t", "bob@example.test", "-t", "nobody@example.test")
    code, out, _ = run(*both, "--json")
    doc = json.loads(out)
    assert code == 5 and doc["exit_code"] == 5
    rejected = [r for r in doc["facts"]["recipients"] if not r["accepted"]]
    assert rejected[0]["address"] == "nobody@example.test"
    assert rejected[0]["reply"]["code"] == 550 and rejected[0]["reply"]["enhanced"] == "5.1.1"
    assert "explain" in rejected[0]["reply"]  # the explain record, inline
    assert {"smtp.rcpt-rejected", "smtp.partial", "smtp.delivered"} <= {f["id"] for f in doc["findings"]}
    assert server.messages[-1].rcpt_tos == ["bob@example.test"]
    code, out, _ = run(*both, "--allow-partial")
    assert code == 0 and "nobody@example.test" in out
    code, out, _ = run("-s", addr(server), "--tls", "none", "-f", "alice@example.test",
                       "-t", "nobody@example.test")
    assert code == 5 and "every recipient was rejected" in out
    assert len(server.messages) == 2


def test_transient_rejection_exits_4(run, smtp_server) -> None:
    server = smtp_server("plain", reject_rcpt={"later@example.test": "450 4.2.1 Mailbox busy"})
    code, out, _ = run("-s", addr(server), "--tls", "none", "-f", "alice@example.test",
                       "-t", "later@example.test")
    assert code == 4 and "450 4.2.1" in out


def test_smtputf8(run, smtp_server) -> None:
    server = smtp_server("plain")
    code, _, err = run("-s", addr(server), "--tls", "none", "-f", "alice@example.test",
                       "-t", "jürgen@example.test", "--subject", "Grüße")
    assert code == 0, err
    msg = server.messages[0]
    assert msg.rcpt_tos == ["jürgen@example.test"]
    assert "SMTPUTF8" in msg.mail_options and msg.smtp_utf8
    assert "To: jürgen@example.test".encode() in msg.content


def test_rfc2047_subject_without_smtputf8(run, smtp_server) -> None:
    server = smtp_server("plain")
    code, _, _ = run("-s", addr(server), "--tls", "none", *BASE, "--subject", "Grüße",
                     "--body", "héllo")
    assert code == 0
    content = server.messages[0].content
    assert b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=" in content
    assert all(b < 128 for b in content)  # quoted-printable body, encoded-word header
    assert "SMTPUTF8" not in server.messages[0].mail_options


def test_pipelining_dsn_and_queue_id(run, bdat_server) -> None:  # noqa: F811
    server = bdat_server().start()
    code, out, err = run("-s", f"127.0.0.1:{server.port}", "--tls", "none", *BASE,
                         "-t", "carol@example.test", "--dsn-notify", "success,failure",
                         "--dsn-ret", "HDRS", "--envid", "id+1=x", "--mail-param", "X-FOO=bar",
                         "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["facts"]["pipelined"] is True
    assert doc["facts"]["queue_id"] == "4XyZ12AbC"
    mail, rcpt1, rcpt2 = server.commands[1:4]
    size = doc["facts"]["message"]["size"]
    assert mail == f"MAIL FROM:<alice@example.test> SIZE={size} RET=HDRS ENVID=id+2B1+3Dx X-FOO=bar\r\n".encode()
    assert rcpt1 == b"RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.test\r\n"
    assert rcpt2.startswith(b"RCPT TO:<carol@example.test> NOTIFY=")


def test_dsn_not_advertised_is_clear(run, smtp_server) -> None:
    server = smtp_server("plain")
    code, _, err = run("-s", addr(server), "--tls", "none", *BASE, "--dsn-notify", "NEVER")
    assert code == 3 and "does not advertise DSN" in err
    assert server.messages == []


def test_bdat_chunks_byte_for_byte(run, bdat_server, tmp_path) -> None:  # noqa: F811
    server = bdat_server().start()
    eml = tmp_path / "m.eml"
    raw = b"From: alice@example.test\nTo: bob@example.test\nSubject: bdat\n\n.dot\nbody \xc3\xa9\n"
    eml.write_bytes(raw)
    code, out, err = run("-s", f"127.0.0.1:{server.port}", "--tls", "none", *BASE,
                         "--data", str(eml), "--bdat", "--chunk-size", "40", "--json")
    assert code == 0, err
    [msg] = server.messages
    expected = raw.replace(b"\n", b"\r\n")
    assert msg.method == "BDAT" and msg.data == expected  # no dot-stuffing with BDAT
    assert msg.chunks == [40] * (len(expected) // 40) + ([len(expected) % 40] if len(expected) % 40 else [])
    assert len(msg.chunks) >= 2
    assert b"BODY=8BITMIME" in server.commands[1]
    assert json.loads(out)["facts"]["content"]["method"] == "BDAT"


def test_bdat_not_advertised(run, smtp_server) -> None:
    server = smtp_server("plain")
    code, _, err = run("-s", addr(server), "--tls", "none", *BASE, "--bdat")
    assert code == 3 and "CHUNKING" in err


def test_quit_after_rcpt_sends_no_message(run, smtp_server) -> None:
    server = smtp_server("plain")
    code, out, _ = run("-s", addr(server), "--tls", "none", *BASE, "--quit-after", "rcpt", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["facts"]["recipients"][0]["accepted"] is True
    assert doc["facts"]["transcript"][-2]["line"] == "QUIT"
    assert server.messages == []


@pytest.mark.parametrize("stage", ["connect", "banner", "ehlo", "tls"])
def test_quit_after_early_stages(run, smtp_server, stage) -> None:
    server = smtp_server("starttls")
    code, out, _ = run("-s", addr(server), "--cafile", server.ca_path, *BASE,
                       "--quit-after", stage, "--json")
    assert code == 0
    doc = json.loads(out)
    assert any(f["id"] == "smtp.stopped" for f in doc["findings"])
    sent = [e["line"] for e in doc["facts"]["transcript"] if e["dir"] == "sent"]
    assert not any(line.startswith("MAIL") for line in sent)


def test_data_file_normalised(run, smtp_server, tmp_path) -> None:
    server = smtp_server("plain")
    eml = tmp_path / "m.eml"
    eml.write_bytes(b"Subject: ready\nX-A: 1\n\nline1\r\nline2\n")
    code, _, _ = run("-s", addr(server), "--tls", "none", *BASE, "--data", str(eml),
                     "-H", "X-A: 2")
    assert code == 0
    assert server.messages[0].content == b"X-A: 2\r\nSubject: ready\r\n\r\nline1\r\nline2\r\n"


def test_attachment_and_html(run, smtp_server, tmp_path) -> None:
    import email
    from email import policy

    server = smtp_server("plain")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4 test\x00\xff")
    code, _, _ = run("-s", addr(server), "--tls", "none", *BASE, "--body", "text",
                     "--html", "<p>hi</p>", "--attach", str(pdf))
    assert code == 0
    msg = email.message_from_bytes(server.messages[0].content, policy=policy.default)
    parts = {p.get_content_type(): p for p in msg.walk()}
    assert {"text/plain", "text/html", "application/pdf"} <= set(parts)
    assert parts["application/pdf"].get_content() == pdf.read_bytes()
    assert parts["application/pdf"].get_filename() == "report.pdf"


def test_dkim_signature_verifies(run, smtp_server, dns_server, tmp_path) -> None:
    import dkim

    from tests.servers.dns_fixture import EXAMPLE_TEST_DKIM_KEY_PEM

    server = smtp_server("plain")
    dns = dns_server()
    key = tmp_path / "k.pem"
    key.write_bytes(EXAMPLE_TEST_DKIM_KEY_PEM)
    code, _, err = run("-s", addr(server), "--tls", "none", *BASE, "--dkim-key", str(key),
                       "--dkim-selector", "selector1")
    assert code == 0, err
    content = server.messages[0].content
    assert content.startswith(b"DKIM-Signature: ")
    resolver = dns.resolver()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        answer = resolver.resolve(name.decode().rstrip("."), "TXT")
        return b"".join(b"".join(r.strings) for r in answer)

    assert dkim.verify(content, dnsfunc=dnsfunc)


def test_dry_run_prints_envelope_and_message(run) -> None:
    code, out, _ = run("-s", "127.0.0.1:1", *BASE, "--bcc", "hidden@example.test", "--dry-run")
    assert code == 0
    assert out.startswith("MAIL FROM:<alice@example.test>\nRCPT TO:<bob@example.test>\n"
                          "RCPT TO:<hidden@example.test>\n")
    assert "hidden@example.test" not in out.split("\n\n", 1)[1]  # Bcc stays out of the headers


@pytest.mark.parametrize("args, text", [
    (("-s", "127.0.0.1:25", "-f", "not-an-address", "-t", "bob@example.test"), "malformed"),
    (("-s", "127.0.0.1:25", "-f", "a@example.test", "-t", "bob@@example.test"), "malformed"),
    (("-s", "127.0.0.1:abc", *BASE), "invalid port"),
    (("-s", "127.0.0.1", "--tls", "sometimes", *BASE), "sometimes"),
    (("-s", "127.0.0.1", *BASE, "--data", "/nonexistent/m.eml"), "cannot read message file"),
    (("-s", "127.0.0.1", *BASE, "--attach", "/nonexistent/f"), "cannot read attachment"),
    (("-s", "127.0.0.1", *BASE, "-H", "no colon"), "malformed header"),
    (("-s", "127.0.0.1", *BASE, "--dsn-notify", "NEVER,SUCCESS"), "dsn-notify"),
    (("-s", "ftp://127.0.0.1", *BASE), "unknown scheme"),
    (("-s", "127.0.0.1", "-t", "bob@example.test"), "no sender"),
    (("-s", "127.0.0.1", *BASE, "-u", "me", "--password-file", "/nonexistent/pw"),
     "smtpcli: cannot read password file /nonexistent/pw: No such file or directory\n"),
])
def test_usage_errors(run, args, text) -> None:
    code, out, err = run(*args)
    assert code == 2
    assert text in err and "Traceback" not in err


def test_connection_refused(run) -> None:
    code, _, err = run("-s", "127.0.0.1:1", "--tls", "none", *BASE)
    assert code == 3 and "cannot connect to 127.0.0.1:1" in err and "refused" in err.lower()


def test_password_option_warns(run, smtp_server) -> None:
    server = smtp_server("starttls", users={"bob": PASSWORD})
    code, out, err = run("-s", addr(server), "--cafile", server.ca_path, "-u", "bob",
                         "--password", PASSWORD, *BASE)
    assert code == 0 and "visible" in err and PASSWORD not in out + err


def test_lazy_imports() -> None:
    import subprocess
    import sys

    code = ("import sys; from smtpcli.cli import send; "
            "bad=[m for m in ('dns','dkim','cryptography','aiosmtpd','rich') if m in sys.modules];"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_server_side_bytes_match_dry_run(run, smtp_server, tmp_path) -> None:
    # What --dry-run shows is what goes on the wire (for a fixed ready message).
    server = smtp_server("plain")
    eml = tmp_path / "m.eml"
    eml.write_bytes(b"Subject: same\r\n\r\nbody\r\n")
    code, out, _ = run("-s", addr(server), *BASE, "--data", str(eml), "--dry-run", "--json")
    data = json.loads(out)["facts"]["message"]["data"].encode()
    code, _, _ = run("-s", addr(server), "--tls", "none", *BASE, "--data", str(eml))
    assert server.messages[0].content == data
    assert Path(eml).exists()
