"""Pure text helpers for the session: dot-stuffing and what history may keep."""

from __future__ import annotations


def dot_stuff(body: str | bytes) -> bytes:
    """Message text -> DATA payload: CRLF line endings, leading dots doubled (RFC 5321 4.5.2),
    ending in CRLF, without the final ``.`` line (the caller sends it)."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    lines = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)


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


def angle_address(address: str) -> str:
    """``a@b`` -> ``<a@b>``; ``<>`` (null reverse-path, RFC 5321 4.5.5) stays as it is."""
    address = address.strip()
    return address if address.startswith("<") else f"<{address}>"
