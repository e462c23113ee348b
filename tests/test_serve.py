"""`smtpcli serve`: storage byte for byte, TLS, AUTH, SMTPUTF8, CLI lifetime and shutdown."""
# ruff: noqa: F811  (the capture_server fixture is imported, then requested by name)

from __future__ import annotations

import hashlib
import json
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from smtpcli.server.config import ServeConfig
from smtpcli.server.storage import StoredMessage, mboxrd_entry
from tests.servers.serve_bench_helpers import (  # noqa: F401
    SMTPCLI,
    capture_server,
    start_serve_process,
)

# A leading dot (dot-stuffed on the wire), a From_ line (quoted in mbox), 8-bit UTF-8.
MESSAGE = (
    "From: Ann <ann@x.test>\r\nTo: bob@y.test\r\nSubject: caf\u00e9\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    ".leading dot\r\nFrom the start of a line\r\n>From quoted\r\ncaf\u00e9 \u2713\r\n"
).encode()


def _interop(tool: str) -> None:
    if shutil.which(tool) is None:
        if os.environ.get("SMTPCLI_REQUIRE_INTEROP"):
            pytest.fail(f"{tool} is required (SMTPCLI_REQUIRE_INTEROP is set)")
        pytest.skip(f"{tool} not installed")


def test_smtplib_message_stored_byte_for_byte_everywhere(capture_server, tmp_path: Path) -> None:
    srv = capture_server(maildir=str(tmp_path / "md"), mbox=str(tmp_path / "mbox"),
                         jsonl=str(tmp_path / "m.jsonl"), memory=True)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("ann@x.test", ["bob@y.test", "cy@y.test"], MESSAGE)
    # Maildir: serve's Received: header (RFC 5321 4.4), then exactly the bytes between DATA and
    # the final dot, dot-unstuffed.
    trace = srv.messages[0].trace
    assert trace.startswith(b"Received: from ") and b" with ESMTP id " in trace
    assert b"for <" not in trace  # two recipients: neither is named
    files = list((tmp_path / "md" / "new").iterdir())
    assert len(files) == 1 and files[0].read_bytes() == trace + MESSAGE
    assert not list((tmp_path / "md" / "tmp").iterdir())
    # mbox (mboxrd): From_ line, LF ends, >-quoted From lines.
    mbox = (tmp_path / "mbox").read_bytes()
    assert mbox.startswith(b"From ann@x.test ")
    body = mbox.split(b"\n", 1)[1]
    expected = (trace + MESSAGE).replace(b"\r\n", b"\n").replace(b"\n>From quoted", b"\n>>From quoted")
    expected = expected.replace(b"\nFrom the start", b"\n>From the start") + b"\n"
    assert body == expected
    # JSON Lines: envelope, headers, size, digest of the exact bytes.
    (record,) = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert record["mail_from"] == "ann@x.test"
    assert record["rcpt_tos"] == ["bob@y.test", "cy@y.test"]
    assert record["size"] == len(MESSAGE)
    assert record["sha256"] == hashlib.sha256(MESSAGE).hexdigest()
    assert ["Subject", "caf\u00e9"] in record["headers"] or record["headers"][2][0] == "Subject"
    assert record["tls"] is None and record["auth"] is None
    assert srv.messages[0].content == MESSAGE
    (event,) = srv.of("message")
    assert sorted(event["stored"]) == sorted([str(files[0]), str(tmp_path / "mbox"),
                                              str(tmp_path / "m.jsonl")])


def test_mboxrd_entry_quotes_every_from_depth() -> None:
    msg = StoredMessage(1, "x", 0.0, None, None, "", [], [], [], b"From a\r\n>From b\r\n")
    entry = mboxrd_entry(msg)
    assert entry.startswith(b"From MAILER-DAEMON ")
    assert entry.endswith(b"\n>From a\n>>From b\n\n")


def test_swaks_message_stored_byte_for_byte(capture_server, tmp_path: Path) -> None:
    _interop("swaks")
    data = MESSAGE.rstrip(b"\r\n")
    (tmp_path / "msg.eml").write_bytes(data)
    srv = capture_server(maildir=str(tmp_path / "md"), received=False)
    out = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{srv.port}", "--from", "ann@x.test",
         "--to", "bob@y.test", "--data", str(tmp_path / "msg.eml")],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (path,) = (tmp_path / "md" / "new").iterdir()
    # swaks ends the data with CRLF "." CRLF; that first CRLF belongs to the message
    # (RFC 5321 4.1.1.4).
    assert path.read_bytes() == data + b"\r\n"


def test_swaks_starttls_and_auth(capture_server, tmp_path: Path) -> None:
    _interop("swaks")
    srv = capture_server(tls_self_signed=True, auth_users={"ann": "s3cret"}, auth_required=True,
                         require_starttls=True)
    base = ["swaks", "--server", f"127.0.0.1:{srv.port}", "--from", "ann@x.test",
            "--to", "bob@y.test"]
    bad = subprocess.run([*base, "-tls", "--auth", "LOGIN", "--auth-user", "ann",
                          "--auth-password", "wrong"], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "535" in bad.stdout
    ok = subprocess.run([*base, "-tls", "--auth", "LOGIN", "--auth-user", "ann",
                         "--auth-password", "s3cret"], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stdout
    (msg,) = srv.messages
    assert msg.tls is not None and msg.tls["version"].startswith("TLS")
    assert msg.auth == {"user": "ann", "mechanism": "LOGIN"}
    # Events never carry the password.
    assert "s3cret" not in json.dumps(srv.events)
    assert [e["success"] for e in srv.of("auth")] == [False, True]


def test_require_starttls_and_auth_required(capture_server) -> None:
    srv = capture_server(tls_self_signed=True, require_starttls=True, auth_accept_any=True,
                         auth_required=True)
    ctx = ssl._create_unverified_context()
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.ehlo()
        assert "auth" not in s.esmtp_features  # AUTH only after STARTTLS
        assert s.mail("a@x.test")[0] == 530
        s.starttls(context=ctx)
        s.ehlo()
        assert s.mail("a@x.test")[0] == 530  # AUTH still missing
        s.login("anyone", "anything")
        s.sendmail("a@x.test", ["b@x.test"], b"Subject: x\r\n\r\ny\r\n")
    assert srv.messages[0].auth["user"] == "anyone"


def test_self_signed_certificate_fingerprint_matches(capture_server) -> None:
    srv = capture_server(tls_self_signed=True, hostname="mx.serve.test")
    listening = srv.of("listening")[0]
    ctx = ssl._create_unverified_context()
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.starttls(context=ctx)
        der = s.sock.getpeercert(binary_form=True)
    fp = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    assert listening["certificate"]["sha256"] == fp
    assert listening["certificate"]["subject"] == "CN=mx.serve.test"


def test_implicit_tls_with_cert_files(capture_server, tls_certs) -> None:
    cert = tls_certs.valid
    srv = capture_server(tls_cert=str(cert.cert_path), tls_key=str(cert.key_path),
                         implicit_tls=True, auth_users={"u": "p"})
    with smtplib.SMTP_SSL("localhost", srv.port, timeout=10,
                          context=cert.client_context()) as s:
        s.login("u", "p")
        s.sendmail("a@x.test", ["b@x.test"], b"Subject: x\r\n\r\ny\r\n")
    (msg,) = srv.messages
    assert msg.tls is not None and msg.auth == {"user": "u", "mechanism": "PLAIN"}


def test_smtputf8(capture_server) -> None:
    srv = capture_server()
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("j\u00f6rg@x.test", ["\u7528\u6237@y.test"], MESSAGE,
                   mail_options=["SMTPUTF8"])
    (msg,) = srv.messages
    assert msg.smtputf8 and msg.mail_from == "j\u00f6rg@x.test"
    assert msg.rcpt_tos == ["\u7528\u6237@y.test"]


def test_pipelined_client_gets_every_reply(capture_server) -> None:
    srv = capture_server()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        f = sock.makefile("rb")
        f.readline()
        sock.sendall(b"EHLO x\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        sock.sendall(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n")
        codes = [f.readline()[:3] for _ in range(4)]
        assert codes == [b"250", b"250", b"250", b"354"]
        sock.sendall(b"Subject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        assert f.readline().startswith(b"250 ")
        assert f.readline().startswith(b"221 ")
    assert srv.messages[0].rcpt_tos == ["b@x.test", "c@x.test"]


def test_config_validation() -> None:
    from smtpcli.errors import UsageError

    for kwargs in ({"host": "0.0.0.0"}, {"host": "::"}, {"host": "192.0.2.1"},
                   {"implicit_tls": True}, {"require_starttls": True},
                   {"auth_required": True}, {"hide": {"CHUNKING"}}):
        with pytest.raises(UsageError):
            ServeConfig(**kwargs).validate()  # type: ignore[arg-type]
    ServeConfig(host="0.0.0.0", public=True).validate()
    ServeConfig(host="::1").validate()
    ServeConfig(host="localhost").validate()


# -- the CLI as a subprocess --------------------------------------------------------------
def _run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SMTPCLI, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("listen", ["0.0.0.0:2525", "[::]:2525", "192.0.2.7:25"])
def test_refuses_non_loopback_without_public(listen: str) -> None:
    out = _run_cli("serve", "--listen", listen)
    assert out.returncode == 2
    assert "--public" in out.stderr and "Traceback" not in out.stderr


def test_bad_fault_option_is_usage_error() -> None:
    out = _run_cli("serve", "--listen", "127.0.0.1:0", "--reply", "rcpt:abc")
    assert out.returncode == 2 and "--reply" in out.stderr


def test_count_and_expect_exit_0(tmp_path: Path) -> None:
    sp = start_serve_process("--count", "2", "--expect", "2", "--maildir", str(tmp_path / "md"))
    for n in range(2):
        with smtplib.SMTP("127.0.0.1", sp.port, timeout=10) as s:
            s.sendmail("a@x.test", ["b@x.test"], b"Subject: %d\r\n\r\nx\r\n" % n)
    rc, events, err = sp.finish()
    assert rc == 0, err
    shutdown = events[-1]
    assert shutdown["event"] == "shutdown" and shutdown["command"] == "serve"
    assert shutdown["facts"]["summary"]["reason"] == "count"
    assert [f["id"] for f in shutdown["findings"]] == ["serve.expect"]
    assert len([e for e in events if e["event"] == "message"]) == 2
    assert len(list((tmp_path / "md" / "new").iterdir())) == 2


def test_expect_not_met_exits_1() -> None:
    sp = start_serve_process("--exit-after", "0.5", "--expect", "1")
    rc, events, _ = sp.finish()
    assert rc == 1
    shutdown = events[-1]
    assert shutdown["status"] == "fail" and shutdown["exit_code"] == 1
    assert shutdown["facts"]["summary"]["reason"] == "exit-after"


def test_text_mode_prints_one_line_per_event() -> None:
    proc = subprocess.Popen(
        [*SMTPCLI, "serve", "--listen", "127.0.0.1:0", "--count", "1",
         "--reply", "rcpt:550 5.1.1 Nope:to=bad@*"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("listening on 127.0.0.1:")
    port = int(first.split()[2].rsplit(":", 1)[1])
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.sendmail("a@x.test", ["bad@x.test", "ok@x.test"], b"Subject: x\r\n\r\ny\r\n")
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "[1] connect from 127.0.0.1:" in out
    assert "[1] fault at rcpt: reply 550 5.1.1 Nope" in out
    assert "[1] message 1 from <a@x.test> to <ok@x.test>" in out


def _dialog_to_data(port: int) -> tuple[socket.socket, object]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"220")
    sock.sendall(b"EHLO x\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    for cmd, code in ((b"MAIL FROM:<a@x.test>", b"250"), (b"RCPT TO:<b@x.test>", b"250"),
                      (b"DATA", b"354")):
        sock.sendall(cmd + b"\r\n")
        assert f.readline().startswith(code)
    return sock, f


def test_sigterm_during_transfer_finishes_it_then_stops(tmp_path: Path) -> None:
    sp = start_serve_process("--maildir", str(tmp_path / "md"), "--grace", "5")
    sock, f = _dialog_to_data(sp.port)
    with sock:
        sock.sendall(MESSAGE[:40])
        time.sleep(0.2)
        sp.terminate()
        time.sleep(0.3)
        # Dot-stuffing on the wire (RFC 5321 4.5.2); the server stores the unstuffed text.
        sock.sendall(MESSAGE[40:].replace(b"\r\n.", b"\r\n..") + b".\r\n")
        assert f.readline().startswith(b"250 ")  # type: ignore[attr-defined]
        # The next command is refused: the server is going away.
        sock.sendall(b"MAIL FROM:<a@x.test>\r\n")
        assert f.readline().startswith(b"421")  # type: ignore[attr-defined]
    rc, events, err = sp.finish()
    assert rc == 0, err
    assert events[-1]["facts"]["summary"]["reason"] == "signal SIGTERM"
    (path,) = (tmp_path / "md" / "new").iterdir()
    stored = path.read_bytes()
    assert stored.startswith(b"Received: from ") and stored.endswith(b"\r\n" + MESSAGE)


def test_sigterm_with_unfinished_transfer_stores_nothing(tmp_path: Path) -> None:
    sp = start_serve_process("--maildir", str(tmp_path / "md"), "--grace", "0.3")
    sock, f = _dialog_to_data(sp.port)
    with sock:
        sock.sendall(MESSAGE[:40])
        time.sleep(0.2)
        sp.terminate()
        rc, events, err = sp.finish()
        rest = f.read()  # type: ignore[attr-defined]
    assert rc == 0, err
    assert b"250" not in rest  # never acknowledged ...
    assert list((tmp_path / "md" / "new").iterdir()) == []  # ... and never stored
    assert events[-1]["facts"]["summary"]["messages"] == 0


def test_received_header_names_protocol_and_single_recipient(capture_server, tmp_path: Path) -> None:
    srv = capture_server(tls_self_signed=True, auth_users={"ann": "s3cret"}, maildir=str(tmp_path / "md"))
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", srv.port, local_hostname="client.test", timeout=10) as s:
        s.starttls(context=ctx)
        s.login("ann", "s3cret")
        s.sendmail("ann@x.test", ["bob@y.test"], MESSAGE)
    (path,) = (tmp_path / "md" / "new").iterdir()
    head = path.read_bytes().split(b"\r\n\t")
    assert head[0] == b"Received: from client.test ([127.0.0.1])"
    assert head[1].startswith(b"by smtpcli.test (smtpcli serve) with ESMTPSA id ")
    assert head[2].startswith(b"for <bob@y.test>; ")


def test_no_received_stores_exactly_what_was_sent(capture_server, tmp_path: Path) -> None:
    srv = capture_server(maildir=str(tmp_path / "md"), received=False)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("ann@x.test", ["bob@y.test"], MESSAGE)
    (path,) = (tmp_path / "md" / "new").iterdir()
    assert path.read_bytes() == MESSAGE


def test_received_header_cannot_be_broken_by_client_text() -> None:
    from smtpcli.server.trace import received_header

    header = received_header(helo="evil\r\nX-Injected: 1", peer_ip="127.0.0.1", hostname="h",
                             message_id="1", recipients=["a@b\r\nX: y"], esmtp=False, tls=False,
                             authenticated=False, when=0)
    assert header.count(b"\r\n") == 3 and b"\r\nX-" not in header
    assert b" with SMTP id 1" in header
