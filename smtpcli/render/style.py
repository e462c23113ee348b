"""Colour decisions and a tiny ANSI painter.

Plain ANSI rather than rich for the common report lines: importing rich costs tens of
milliseconds, and `smtpcli explain` must start about as fast as swaks. Richer views (tables,
progress bars) import rich where they need it.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

_CODES = {
    "ok": "32", "success": "32", "info": "36", "intermediate": "36", "warn": "33",
    "transient": "33", "fail": "31", "permanent": "31", "error": "35", "bold": "1",
    "dim": "2", "sent": "34", "received": "37",
}


def colour_enabled(stream: TextIO | None = None) -> bool:
    """Colour only on a terminal, never with NO_COLOR (https://no-color.org), forced by
    FORCE_COLOR."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    stream = stream or sys.stdout
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


class Painter:
    """Applies ANSI styles when colour is enabled, otherwise returns text unchanged."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, style: str) -> str:
        code = _CODES.get(style)
        if not self.enabled or code is None:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"

    @classmethod
    def for_stream(cls, stream: TextIO | None = None) -> Painter:
        return cls(colour_enabled(stream))
