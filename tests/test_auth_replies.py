"""AUTH answered with a 2xx other than 235 is a protocol violation (exit 3), not a failed
authentication (exit 5): RFC 4954 6 (issue 14). Against Postfix's smtp-sink, which answers
``250 2.0.0 Ok``, and a scripted peer doing the same."""

from __future__ import annotations

from tests.servers.scripted_peer import Expect, Send
from tests.servers.smtp_sink import smtp_sink

__all__ = ["smtp_sink"]

SEND = ["send", "--tls", "none", "-f", "a@example.test", "-t", "b@example.test",
        "--user", "alice", "--password", "pw", "--timeout", "5"]


def test_smtp_sink_250_to_auth_is_a_protocol_violation(cli, smtp_sink: int) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli(*SEND, "--server", f"127.0.0.1:{smtp_sink}")
    assert code == 3, err
    assert "250 2.0.0 Ok instead of 235" in err and "RFC 4954" in err
    assert "authentication failed" not in err


def test_scripted_peer_250_to_auth(cli, scripted_peer) -> None:  # type: ignore[no-untyped-def]
    peer = scripted_peer([
        Send(b"220 p.test ESMTP\r\n"), Expect(b"EHLO"), Send(b"250-p.test\r\n250 AUTH PLAIN\r\n"),
        Expect(b"AUTH"), Send(b"250 2.0.0 Ok\r\n"), Expect(b"QUIT"), Send(b"221 bye\r\n"),
    ])
    code, _, err = cli(*SEND, "--server", f"127.0.0.1:{peer.port}")
    assert code == 3, err
    assert "protocol violation" in err


def test_535_is_still_a_permanent_failure(cli, smtp_server) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("plain", users={"alice": "right"}, auth_require_tls=False)
    code, _, err = cli(*SEND, "--server", f"127.0.0.1:{server.port}")
    assert code == 5, err
