"""Pure text helpers for the session: dot-stuffing, reply classes, what history may keep."""

from __future__ import annotations

import re

_REPLY_RE = re.compile(r"^([2-5][0-9][0-9])([ -])(.*)$")


def dot_stuff(body: str | bytes) -> bytes:
    """Message text -> DATA payload: CRLF line endings, leading dots doubled (RFC 5321 4.5.2),
    ending in CRLF, without the final ``.`` line (the caller sends it)."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    lines = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)


def reply_class(code: int) -> str:
    """``ok`` (2xx), ``more`` (3xx), ``transient`` (4xx), ``permanent`` (5xx), else ``unknown``."""
    return {2: "ok", 3: "more", 4: "transient", 5: "permanent"}.get(code // 100, "unknown")


def parse_reply_line(line: str) -> tuple[int, bool, str] | None:
    """``250-SIZE 1000`` -> ``(250, True, "SIZE 1000")`` (True: more lines follow)."""
    match = _REPLY_RE.match(line)
    if match is None:
        return None
    return int(match.group(1)), match.group(2) == "-", match.group(3)


def is_auth_line(line: str) -> bool:
    """A raw ``AUTH ...`` command or an ``.auth`` special: such lines carry credentials."""
    word = line.strip().split(" ", 1)[0].upper()
    return word in ("AUTH", ".AUTH")


def history_allowed(line: str, *, in_auth_exchange: bool = False) -> bool:
    """Whether a typed line may be written to the history file.

    Never AUTH commands or anything typed while an AUTH exchange is open (the answers to 334
    challenges are credentials, RFC 4954 4), and never blank lines.
    """
    if not line.strip() or in_auth_exchange:
        return False
    return not is_auth_line(line)
