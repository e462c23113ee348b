"""Session input a user types: raw DATA content is dot-stuffed like ``.data``, and non-ASCII
lines go out as UTF-8 when the server offers SMTPUTF8 (RFC 6531), else a clear message (issue 14)."""

from __future__ import annotations

import os
import subprocess
import sys

SMTPCLI = [sys.executable, "-m", "smtpcli"]


def _session(port: int, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(SMTPCLI + ["session", f"127.0.0.1:{port}", "--timeout", "5"],
                          input=script, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"})


def test_raw_data_lines_are_dot_stuffed(smtp_server) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("plain")
    script = ("EHLO me.test\nMAIL FROM:<a@example.test>\nRCPT TO:<b@example.test>\nDATA\n"
              "Subject: dots\n\n.dot line\n..two\n.\nQUIT\n")
    result = _session(server.port, script)
    assert result.returncode == 0, result.stdout + result.stderr
    # RFC 5321 4.5.2: the server removes one leading dot, so the stored text is as typed.
    assert server.messages[-1].content == b"Subject: dots\r\n\r\n.dot line\r\n..two\r\n"
    assert "C: ..dot line" in result.stdout


def test_utf8_address_goes_out_when_smtputf8_is_offered(smtp_server) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("plain")
    script = ("EHLO me\nMAIL FROM:<jörg@example.test> SMTPUTF8\nRCPT TO:<b@example.test>\nDATA\n"
              "Subject: grüße\n\nhéllo\n.\nQUIT\n")
    result = _session(server.port, script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    msg = server.messages[-1]
    assert msg.mail_from == "jörg@example.test" and msg.smtp_utf8
    assert "héllo".encode() in msg.content


def test_non_ascii_without_smtputf8_is_refused_and_the_session_goes_on(smtp_server) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("plain", enable_SMTPUTF8=False)
    script = "EHLO me\nMAIL FROM:<jörg@example.test>\nNOOP\nQUIT\n"
    result = _session(server.port, script)
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert "did not offer SMTPUTF8" in result.stdout
    assert "C: NOOP" in result.stdout and "S: 250" in result.stdout.split("C: NOOP", 1)[1]
    assert result.returncode == 0
