"""SMTP replies (RFC 5321 4.2) with their enhanced status code (RFC 3463), if any."""

from __future__ import annotations

import re
from typing import Any

from smtpcli.records import FrozenRecord

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)")


class Reply(FrozenRecord):
    """A complete (possibly multi-line) reply: the code and the text of each line."""

    __slots__ = ("code", "lines")
    code: int
    lines: tuple[str, ...]

    def __init__(self, code: int, lines: tuple[str, ...] = ()) -> None:
        self._set(code=code, lines=lines)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def enhanced(self) -> str | None:
        """The RFC 3463 enhanced status code of the first line, when its class matches."""
        if not self.lines:
            return None
        m = _ENHANCED.match(self.lines[0])
        if m and m.group(1) == str(self.code)[0]:
            return ".".join(m.groups())
        return None

    @property
    def positive(self) -> bool:
        return 200 <= self.code < 400

    @property
    def transient(self) -> bool:
        return 400 <= self.code < 500

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600

    def one_line(self) -> str:
        """``550 5.1.1 user unknown`` (continuation lines joined by spaces)."""
        return f"{self.code} " + " ".join(line.strip() for line in self.lines if line.strip())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "text": self.text}
        if self.enhanced:
            out["enhanced"] = self.enhanced
        return out
