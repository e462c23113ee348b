"""serve never advertises a bare ``AUTH`` (RFC 4954 3: AUTH comes with its mechanisms), before
or after STARTTLS; with users, AUTH lists them (issue 14)."""
# ruff: noqa: F811  (the capture_server fixture is imported, then requested by name)

from __future__ import annotations

import smtplib
import ssl

from tests.servers.serve_bench_helpers import capture_server  # noqa: F401


def _auth_lines(reply: bytes) -> list[str]:
    return [line for line in reply.decode().splitlines() if line.upper().startswith("AUTH")]


def test_no_auth_configured_means_no_auth_line_before_or_after_starttls(capture_server) -> None:
    srv = capture_server(tls_self_signed=True)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        code, before = s.ehlo()
        assert code == 250 and _auth_lines(before) == []
        s.starttls(context=ssl._create_unverified_context())
        code, after = s.ehlo()
        assert code == 250 and _auth_lines(after) == []
        assert "auth" not in s.esmtp_features


def test_auth_users_advertise_their_mechanisms(capture_server) -> None:
    srv = capture_server(auth_users={"u": "p"}, auth_plaintext=True)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        _, reply = s.ehlo()
        (line,) = _auth_lines(reply)
        assert set(line.split()[1:]) == {"LOGIN", "PLAIN"}
