"""The session: pure completer, specials registry, dot-stuffing, history filter, and scripted runs
end to end against the aiosmtpd fixture (STARTTLS, AUTH, DATA) and the scripted peer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from smtpcli.session.completer import suggest
from smtpcli.session.engine import Output, Session
from smtpcli.session.explain import explain_reply
from smtpcli.session.scripted import session_report
from smtpcli.session.specials import SPECIALS, help_text
from smtpcli.session.state import SessionState
from smtpcli.session.text import dot_stuff, history_allowed
from smtpcli.smtp.connection import ConnectOptions
from smtpcli.smtp.target import parse_target
from smtpcli.smtp.tlsinfo import TlsOptions
from tests.servers.scripted_peer import Close, Expect, Send

SMTPCLI = [sys.executable, "-m", "smtpcli"]


def _state(caps: dict[str, str], tls: bool = False) -> SessionState:
    return SessionState(connected=True, tls=tls, host="h", capabilities=caps)


# ---- pure parts ----------------------------------------------------------------------------


def test_suggest_verbs_and_starttls_only_before_tls() -> None:
    before = _state({"STARTTLS": "", "PIPELINING": ""})
    assert "STARTTLS" in suggest("ST", before)
    assert suggest("ST", _state({"STARTTLS": ""}, tls=True)) == []
    assert suggest("st", _state({})) == []  # not advertised: not offered
    assert suggest("MA", before) == ["MAIL FROM:"]
    assert suggest("R", before) == ["RCPT TO:", "RSET"]


def test_suggest_auth_mechanisms_only_when_offered() -> None:
    assert suggest("AU", _state({})) == []
    offered = _state({"AUTH": "PLAIN LOGIN CRAM-MD5"})
    assert suggest("AU", offered) == ["AUTH"]
    assert suggest("AUTH ", offered) == ["PLAIN", "LOGIN", "CRAM-MD5"]
    assert suggest("AUTH c", offered) == ["CRAM-MD5"]
    assert suggest(".auth L", offered) == ["LOGIN"]
    assert suggest("AUTH X", offered) == []


def test_suggest_specials_and_params() -> None:
    state = _state({"SIZE": "1000", "SMTPUTF8": "", "DSN": ""})
    assert ".starttls" in suggest(".st", state)
    assert suggest(".he", state) == [".help"]
    assert suggest("MAIL FROM:<a@b> S", state) == ["SIZE=", "SMTPUTF8"]
    assert suggest("RCPT TO:<a@b> N", state) == ["NOTIFY=SUCCESS,FAILURE,DELAY", "NOTIFY=NEVER"]
    assert suggest("MAIL FROM:<a@b> S", _state({})) == []
    state.in_auth = True
    assert suggest("A", state) == []  # nothing completes inside an AUTH exchange


def test_help_is_generated_from_the_registry() -> None:
    text = help_text()
    for name in (".connect", ".ehlo", ".starttls", ".auth", ".mail", ".rcpt", ".data", ".send",
                 ".cert", ".transcript", ".explain", ".reset", ".quit", ".help"):
        assert name in SPECIALS
        assert name in text
    assert ".auth MECH USER" in help_text(".auth")
    assert "no special command" in help_text(".nope")


def test_dot_stuffing() -> None:
    assert dot_stuff("a\n.b\n..c\n") == b"a\r\n..b\r\n...c\r\n"
    assert dot_stuff(b"x\r\n.\r\ny") == b"x\r\n..\r\ny\r\n"
    assert dot_stuff("") == b""


def test_history_filter_never_keeps_auth() -> None:
    assert history_allowed("EHLO me")
    assert not history_allowed("AUTH PLAIN AGFsaWNlAHNlY3JldA==")
    assert not history_allowed("auth login")
    assert not history_allowed(".auth PLAIN alice")
    assert not history_allowed("c2VjcmV0", in_auth_exchange=True)
    assert not history_allowed("   ")


def test_explain_text_comes_from_the_explain_library() -> None:
    from smtpcli.session.explain import explain_text

    text = explain_text(".explain 5.1.1".split(" ", 1)[1]) or ""
    assert text.startswith("5.1.1: ") and "mailbox" in text.lower()
    assert (explain_text("550 5.7.26 unauthenticated") or "").startswith("550 5.7.26: ")
    assert explain_text("hello") is None


def _session(target: str, cafile: str | None = None, secret: str | None = "s3cret",
             lines: list[str] | None = None) -> tuple[Session, list[Output]]:
    out: list[Output] = []
    more = iter(lines or [])
    session = Session(
        parse_target(target), ConnectOptions(timeout=5, tls=TlsOptions(verify=False, cafile=cafile)),
        emit=out.append, read_line=lambda p: next(more, None), read_secret=lambda p: secret,
        explain=explain_reply,
    )
    return session, out


def test_engine_starttls_auth_and_data(smtp_server) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("starttls", users={"alice": "s3cret"})
    session, out = _session(f"127.0.0.1:{server.port}", cafile=server.ca_path,
                            lines=["Subject: hi", "", ".leading dot", "."])
    session.connect()
    session.handle("EHLO client.test")
    assert "STARTTLS" in session.state.capabilities
    assert "AUTH" not in session.state.capabilities  # the fixture offers AUTH only after TLS
    session.handle(".starttls")
    assert session.state.tls
    assert any(o.kind == "cert" and "verified" in o.text for o in out)
    assert "PLAIN" in session.state.auth_mechanisms
    assert suggest("ST", session.state) == []
    session.handle(".auth PLAIN alice")
    assert session.last_reply is not None and session.last_reply.code == 235
    session.handle(".mail sender@example.test")
    session.handle(".rcpt rcpt@example.test")
    session.handle(".data")
    assert session.last_reply.code == 250
    session.handle(".quit")
    assert session.done
    assert server.messages[0].content == b"Subject: hi\r\n\r\n.leading dot\r\n"
    assert server.messages[0].auth_user == "alice" and server.messages[0].tls
    text = json.dumps(session_report(session, 0).to_dict())
    assert "s3cret" not in text and "AGFsaWNl" not in text
    assert "AUTH PLAIN [redacted]" in text


def test_engine_explains_rejections_and_reports_connection_loss(scripted_peer) -> None:  # type: ignore[no-untyped-def]
    peer = scripted_peer([
        Send(b"220 peer.test ESMTP\r\n"), Expect(b"MAIL"),
        Send(b"550 5.7.1 relaying denied\r\n"), Expect(b"NOOP"), Close(),
    ])
    session, out = _session(f"127.0.0.1:{peer.port}")
    session.connect()
    session.handle("MAIL FROM:<a@b.test>")
    assert session.last_reply.code == 550
    explained = [o for o in out if o.kind == "explain"]
    assert explained and explained[0].code == 550
    assert "relay" in explained[0].text.lower() or "5.7.1" in explained[0].text
    session.handle("NOOP")
    assert any("connection lost" in o.text for o in out if o.kind == "error")
    assert not session.state.connected and session.last_error is not None
    session.handle("NOOP")
    assert any("not connected" in o.text for o in out)
    # .connect reconnects (the peer runs its script again on each connection)
    session.handle(".connect")
    assert session.state.connected and session.last_reply.code == 220


# ---- scripted mode through a pipe, as a user runs it ----------------------------------------


def _run(args: list[str], stdin: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run(SMTPCLI + args, input=stdin, capture_output=True, text=True,
                          timeout=30, env=full_env)


def test_scripted_pipe_starttls_auth_send(smtp_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("starttls", users={"alice": "s3cret"})
    script = "EHLO client.test\n.starttls\n.auth PLAIN alice\n.send a@example.test b@example.test\nQUIT\n"
    result = _run(["session", f"127.0.0.1:{server.port}", "--cafile", server.ca_path],
                  script, env={"SMTPCLI_PASSWORD": "s3cret"})
    assert result.returncode == 0, result.stderr
    assert "C: STARTTLS" in result.stdout
    assert "S: 235" in result.stdout
    assert "C: AUTH PLAIN [redacted]" in result.stdout
    assert "s3cret" not in result.stdout + result.stderr
    assert len(server.messages) == 1 and server.messages[0].auth_user == "alice"
    assert server.messages[0].rcpt_tos == ["b@example.test"]


def test_scripted_json_and_exit_code_by_last_reply(smtp_server) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("plain", reject_rcpt={"bad@example.test": "550 5.1.1 no such user"})
    script = "EHLO c.test\nMAIL FROM:<a@example.test>\nRCPT TO:<bad@example.test>\n"
    result = _run(["session", f"127.0.0.1:{server.port}", "--json"], script)
    assert result.returncode == 5, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == 1 and doc["command"] == "session"
    assert doc["facts"]["last_reply"]["code"] == 550
    assert any(e["dir"] == "sent" and e["line"] == "RCPT TO:<bad@example.test>"
               for e in doc["facts"]["transcript"])
    assert doc["exit_code"] == 5


def test_scripted_connect_failure_exits_3(scripted_peer) -> None:  # type: ignore[no-untyped-def]
    peer = scripted_peer([Close()])
    port = peer.port
    peer.stop()
    result = _run(["session", f"127.0.0.1:{port}", "--timeout", "3"], "NOOP\n")
    assert result.returncode == 3
    assert "cannot connect" in result.stderr


# ---- the REPL itself, driven through prompt_toolkit's pipe input ----------------------------


def test_repl_end_to_end_with_history(smtp_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from smtpcli.session.repl import run_repl

    server = smtp_server("starttls", users={"alice": "s3cret"})
    history = tmp_path / "state" / "session_history"
    seen: list[Output] = []
    session, _ = _session(f"127.0.0.1:{server.port}", cafile=server.ca_path, secret=None)
    session.connect()
    with create_pipe_input() as pipe:
        # Ctrl-C clears a half-typed line; the password is typed at its own hidden prompt;
        # Ctrl-D ends the session with QUIT.
        pipe.send_text("NOOP half typed\x03EHLO repl.test\r.starttls\r.auth PLAIN alice\r"
                       "s3cret\r.mail a@example.test\r.rcpt b@example.test\r\x04")
        code = run_repl(session, history=history, input=pipe, output=DummyOutput(),
                        tee=seen.append)
    assert code == 0
    sent = [o.text for o in seen if o.kind == "sent"]
    assert "NOOP half typed" not in sent
    assert sent[0] == "EHLO repl.test" and "STARTTLS" in sent
    assert "AUTH PLAIN [redacted]" in sent and sent[-1] == "QUIT"
    assert any(o.kind == "recv" and o.text.startswith("235") for o in seen)
    assert session.done and not session.state.connected
    saved = history.read_text()
    assert "EHLO repl.test" in saved and ".starttls" in saved and ".mail a@example.test" in saved
    assert "auth" not in saved.lower() and "s3cret" not in saved


def test_repl_styles_by_reply_class() -> None:
    from smtpcli.session.repl import style_for

    assert style_for(Output("recv", "250 ok", 250)) == "ansigreen"
    assert style_for(Output("recv", "451 later", 451)) == "ansiyellow"
    assert style_for(Output("recv", "550 no", 550)) == "ansired"
    assert style_for(Output("error", "lost")) == "ansired bold"


def test_specials_cert_transcript_explain_data_file_and_raw_data(smtp_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("starttls")
    session, out = _session(f"127.0.0.1:{server.port}", cafile=server.ca_path)
    session.handle(".cert")
    assert any(o.kind == "error" and "no TLS yet" in o.text for o in out)
    session.handle(".connect")
    session.handle(".ehlo client.test")
    session.handle(".starttls")
    out.clear()
    session.handle(".cert")
    assert any(o.kind == "cert" and "sha256" in o.text for o in out)
    session.handle(".explain 550 5.1.1")
    assert any(o.kind == "explain" and o.text for o in out)
    session.handle(".nosuch")
    assert any("unknown special command .nosuch" in o.text for o in out)
    body = tmp_path / "msg.eml"
    body.write_bytes(b"Subject: file\n\n.dot\nend\n")
    session.handle(".mail a@example.test")
    session.handle(".rcpt b@example.test")
    session.handle(f".data {body}")
    assert server.messages[-1].content == b"Subject: file\r\n\r\n.dot\r\nend\r\n"
    # raw DATA: message mode until '.', the user's own lines as typed
    for line in ("MAIL FROM:<a@example.test>", "RCPT TO:<c@example.test>", "DATA", "Subject: raw",
                 "", "hello", "."):
        session.handle(line)
    assert session.last_reply is not None and session.last_reply.code == 250
    assert server.messages[-1].content == b"Subject: raw\r\n\r\nhello\r\n"
    session.handle(".reset")
    assert session.last_reply.code == 250
    saved = tmp_path / "t.txt"
    session.handle(f".transcript {saved}")
    text = saved.read_text()
    assert "sent RSET" in text and "recv 354" in text
    # Leave cleanly: a TLS connection left open keeps the server's stop waiting ~5 s.
    session.handle(".quit")
