"""The Received: trace header serve adds to every accepted message (RFC 5321 4.4)."""

from __future__ import annotations

import email.utils
import time


def received_header(
    *,
    helo: str | None,
    peer_ip: str | None,
    hostname: str,
    message_id: str,
    recipients: list[str],
    esmtp: bool,
    tls: bool,
    authenticated: bool,
    when: float | None = None,
) -> bytes:
    """``Received: from HELO ([IP]) by HOST (smtpcli serve) with PROTO id ID [for <rcpt>]; DATE``.

    PROTO follows RFC 3848: ESMTP plus S for TLS and A for AUTH. The ``for`` clause names the
    recipient only when there is exactly one, so a Bcc recipient is not revealed to others.
    """
    proto = "ESMTP" if esmtp else "SMTP"
    if esmtp and tls:
        proto += "S"
    if esmtp and authenticated:
        proto += "A"
    source = _clean(helo) or "unknown"
    literal = f"[{peer_ip}]" if peer_ip else "unknown"
    parts = [f"Received: from {source} ({literal})",
             f"\tby {_clean(hostname)} (smtpcli serve) with {proto} id {_clean(message_id)}"]
    when_text = email.utils.formatdate(time.time() if when is None else when, localtime=True)
    if len(recipients) == 1:
        parts.append(f"\tfor <{_clean(recipients[0])}>; {when_text}")
    else:
        parts[-1] += ";"
        parts.append(f"\t{when_text}")
    return ("\r\n".join(parts) + "\r\n").encode("utf-8", "replace")


def _clean(text: str | None) -> str:
    """Nothing the client chose may break the header: no CR/LF, no control characters."""
    if not text:
        return ""
    return "".join(ch for ch in text if ch >= " " and ch != "\x7f")[:255]
