"""Misbehaving SMTP servers as scripted-peer scripts, with what each command must answer.

Each ``Hostile`` names a script, the stage it hits ("connect": before or in the greeting,
"ehlo", "tls", "mail" for the envelope, "data") and the documented exit code of ``send``,
``probe`` and ``session`` (scripted) against it (DESIGN exit codes: 3 could not complete,
4 transient rejection, 5 permanent rejection, 1 a probe check failed). Every script is finite
or paced, so the peer itself never spins at full speed.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass

from tests.servers.scripted_peer import (
    Close,
    Expect,
    ExpectData,
    Reset,
    Send,
    SendForever,
    Sleep,
    StartTLS,
    Step,
)

B = Send(b"220 hostile.test ESMTP\r\n")
EHLO_OK = [Expect(b"EHLO"), Send(b"250-hostile.test\r\n250 8BITMIME\r\n")]
EHLO_TLS = [Expect(b"EHLO"), Send(b"250-hostile.test\r\n250 STARTTLS\r\n")]
ENVELOPE = [Expect(b"MAIL"), Send(b"250 ok\r\n"), Expect(b"RCPT"), Send(b"250 ok\r\n")]
TEN_MIB = 10 * 1024 * 1024


def _answer_all(reply: bytes, times: int = 6) -> list[Step]:
    """Answer every command (QUIT included) with ``reply``: a server that refuses service."""
    steps: list[Step] = []
    for _ in range(times):
        steps += [Expect(b""), Send(reply)]
    return steps


@dataclass(frozen=True)
class Hostile:
    """One misbehaving server and the exit code each command must end with."""

    name: str
    script: Callable[[ssl.SSLContext], list[Step]]
    stage: str
    send: int = 3
    probe: int = 3
    session: int = 3


def _cases() -> list[Hostile]:
    h = Hostile
    return [
        # ---- before or in the greeting -------------------------------------------------------
        h("banner-never-sent", lambda t: [Sleep(60)], "connect"),
        h("close-at-once", lambda t: [Close()], "connect"),
        h("reset-at-once", lambda t: [Reset()], "connect"),
        # A byte every 0.05 s, well within any timeout the tests set (0.3 s and up): each read
        # returns in time, only a deadline per reply ends it.
        h("banner-byte-per-second", lambda t: [SendForever(b"2", 0.05)], "connect"),
        h("banner-endless-multiline",
          lambda t: [SendForever(b"220-still greeting you\r\n" * 20, 0.001)], "connect"),
        h("banner-10mib-line", lambda t: [Send(b"220 " + b"x" * TEN_MIB)], "connect"),
        h("banner-http-garbage", lambda t: [Send(b"HTTP/1.1 400 Bad Request\r\n\r\n")], "connect"),
        h("banner-invalid-code", lambda t: [Send(b"999 what\r\n")], "connect"),
        h("banner-code-letters", lambda t: [Send(b"2x0 hello\r\n")], "connect"),
        h("banner-code-only-digits", lambda t: [Send(b"22\r\n")], "connect"),
        h("banner-binary", lambda t: [Send(bytes(range(256)) * 4)], "connect"),
        h("banner-no-newline-then-close", lambda t: [Send(b"220 half a line"), Close()],
          "connect"),
        h("banner-mixed-codes", lambda t: [Send(b"220-first\r\n554 second\r\n")], "connect"),
        h("banner-tls-garbage", lambda t: [Send(b"\x16\x03\x01\x02\x00" + b"\x00" * 64)],
          "connect"),
        # 421 greeting: service not available, closing (RFC 5321 3.8); probe: a failed check.
        h("banner-421", lambda t: [Send(b"421 4.3.2 too busy\r\n"), Close()], "connect",
          send=4, probe=1, session=4),
        # 554 greeting: no service here, but the server stays to answer QUIT (RFC 5321 3.1).
        h("banner-554", lambda t: [Send(b"554 5.7.1 go away\r\n"),
                                   *_answer_all(b"503 5.5.1 no service\r\n")], "connect",
          send=5, probe=1, session=5),
        h("reply-before-command",
          lambda t: [Send(b"220 hostile.test\r\n250 unasked\r\n250 also unasked\r\n"), *EHLO_OK,
                     Expect(b"MAIL"), Send(b"250 ok\r\n"), Sleep(30)], "connect"),
        # ---- EHLO ----------------------------------------------------------------------------
        h("ehlo-silence", lambda t: [B, Expect(b"EHLO"), Sleep(60)], "ehlo"),
        h("ehlo-close", lambda t: [B, Expect(b"EHLO"), Close()], "ehlo"),
        h("ehlo-reset", lambda t: [B, Expect(b"EHLO"), Reset()], "ehlo"),
        h("ehlo-421", lambda t: [B, Expect(b"EHLO"), Send(b"421 4.3.2 bye\r\n"), Close()], "ehlo",
          send=4, session=4),
        h("ehlo-10000-extensions", lambda t: [B, Expect(b"EHLO"), Send(
            b"250-hostile.test\r\n" + b"".join(b"250-X-EXT%d\r\n" % i for i in range(10000))
            + b"250 8BITMIME\r\n")], "ehlo"),
        h("ehlo-endless-multiline",
          lambda t: [B, Expect(b"EHLO"), SendForever(b"250-more\r\n" * 50, 0.001)], "ehlo"),
        h("ehlo-10mib-line", lambda t: [B, Expect(b"EHLO"), Send(b"250-" + b"y" * TEN_MIB)],
          "ehlo"),
        h("ehlo-byte-per-second", lambda t: [B, Expect(b"EHLO"), SendForever(b"2", 0.05)], "ehlo"),
        h("ehlo-invalid-code", lambda t: [B, Expect(b"EHLO"), Send(b"299x hello\r\n")], "ehlo"),
        h("ehlo-two-replies", lambda t: [B, Expect(b"EHLO"),
                                         Send(b"250 hostile.test\r\n250 and again\r\n"),
                                         Expect(b"MAIL"), Send(b"250 ok\r\n"), Sleep(30)], "ehlo"),
        # ---- STARTTLS ------------------------------------------------------------------------
        h("starttls-then-plaintext",
          lambda t: [B, *EHLO_TLS, Expect(b"STARTTLS"),
                     Send(b"220 go\r\n250 plaintext, not TLS\r\n"), Sleep(30)], "tls",
          probe=1),
        # A handshake that fails after 220 (garbage, a reset) is a finding of probe: the server
        # is there and its STARTTLS is broken (tls.handshake-failed, a failed check: 1).
        h("starttls-garbage-handshake",
          lambda t: [B, *EHLO_TLS, Expect(b"STARTTLS"), Send(b"220 go\r\n"), Sleep(0.05),
                     Send(b"\x16\x03\x01\x00\x05garbage-not-tls" * 4), Close()], "tls",
          probe=1),
        h("starttls-silent-handshake",
          lambda t: [B, *EHLO_TLS, Expect(b"STARTTLS"), Send(b"220 go\r\n"), Sleep(60)], "tls"),
        h("starttls-reset-handshake",
          lambda t: [B, *EHLO_TLS, Expect(b"STARTTLS"), Send(b"220 go\r\n"), Sleep(0.05),
                     Reset()], "tls", probe=1),
        # send --tls starttls: a refused STARTTLS is a 4xx rejection (4); probe: a failed check.
        h("starttls-454",
          lambda t: [B, *EHLO_TLS, Expect(b"STARTTLS"),
                     Send(b"454 4.7.0 TLS not available\r\n"),
                     *_answer_all(b"503 5.5.1 say EHLO first\r\n")], "tls",
          send=4, probe=1, session=5),
        h("tls-then-close",
          lambda t: [B, *EHLO_TLS, Expect(b"STARTTLS"), Send(b"220 go\r\n"), StartTLS(t), Close()],
          "tls"),
        h("tls-then-garbage",
          lambda t: [B, *EHLO_TLS, Expect(b"STARTTLS"), Send(b"220 go\r\n"), StartTLS(t),
                     Expect(b"EHLO"), Send(b"\x00\x01garbage\r\n")], "tls"),
        # ---- the envelope --------------------------------------------------------------------
        # probe sends no MAIL: its VRFY/EXPN meet these replies instead. When they are answered
        # (even by 421, after which probe stops asking) it completes and fails the check that
        # STARTTLS is missing (1); silence, a reset or garbage there leave it incomplete (3).
        h("mail-421", lambda t: [B, *EHLO_OK, Expect(b"MAIL"), Send(b"421 4.3.2 closing\r\n"),
                                 Close()], "mail", send=4, probe=1, session=4),
        h("rcpt-421", lambda t: [B, *EHLO_OK, Expect(b"MAIL"), Send(b"250 ok\r\n"),
                                 Expect(b"RCPT"), Send(b"421 4.3.2 closing\r\n"), Close()], "mail",
          send=4, probe=1, session=4),
        h("mail-silence", lambda t: [B, *EHLO_OK, Expect(b"MAIL"), Sleep(60)], "mail", probe=3),
        h("mail-reset", lambda t: [B, *EHLO_OK, Expect(b"MAIL"), Reset()], "mail", probe=3),
        h("rcpt-garbage", lambda t: [B, *EHLO_OK, Expect(b"MAIL"), Send(b"250 ok\r\n"),
                                     Expect(b"RCPT"), Send(b"OK fine\r\n")], "mail", probe=3),
        # ---- DATA ----------------------------------------------------------------------------
        h("data-421", lambda t: [B, *EHLO_OK, *ENVELOPE, Expect(b"DATA"),
                                 Send(b"421 4.3.2 closing\r\n"), Close()], "data",
          send=4, probe=1, session=4),
        h("reset-mid-data", lambda t: [B, *EHLO_OK, *ENVELOPE, Expect(b"DATA"), Send(b"354 go\r\n"),
                                       Expect(b""), Reset()], "data", probe=1),
        h("dot-silence", lambda t: [B, *EHLO_OK, *ENVELOPE, Expect(b"DATA"), Send(b"354 go\r\n"),
                                    ExpectData(), Sleep(60)], "data", probe=1),
        h("dot-421", lambda t: [B, *EHLO_OK, *ENVELOPE, Expect(b"DATA"), Send(b"354 go\r\n"),
                                ExpectData(), Send(b"421 4.3.2 closing\r\n"), Close()], "data",
          send=4, probe=1, session=4),
        h("dot-endless-multiline",
          lambda t: [B, *EHLO_OK, *ENVELOPE, Expect(b"DATA"), Send(b"354 go\r\n"), ExpectData(),
                     SendForever(b"250-queued\r\n" * 50, 0.001)], "data", probe=1),
    ]


CASES: dict[str, Hostile] = {c.name: c for c in _cases()}
