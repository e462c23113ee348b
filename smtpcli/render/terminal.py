"""The terminal's width, by shutil.get_terminal_size's rules, without importing shutil.

shutil pulls in bz2, lzma and zlib (about 3 ms); the start-up paths (`--help`, a plain `send`)
only need the width.
"""

from __future__ import annotations

import os
import sys


def columns(fallback: int = 80) -> int:
    """``$COLUMNS`` if set, else the width of the terminal on stdout, else ``fallback``."""
    try:
        width = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        width = 0
    if width <= 0:
        try:
            width = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            width = 0
    return width or fallback


def help_width() -> int:
    """The width click's help formatter would choose (min(columns, 80) - 2, at least 50)."""
    return max(min(columns(), 80) - 2, 50)
