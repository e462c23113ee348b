"""Durations as people read them (inspect's Received hops): ``45s``, ``5m 03s``, ``3h 10m``,
``2d 4h``, ``6y 3d``."""

from __future__ import annotations

_UNITS = (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def human_duration(seconds: float) -> str:
    """The two largest units of ``abs(seconds)`` (the sign is the caller's to show)."""
    left = round(abs(seconds))
    if left < 60:
        return f"{left}s"
    for index, (unit, size) in enumerate(_UNITS[:-1]):
        if left >= size:
            small_unit, small_size = _UNITS[index + 1]
            big, rest = divmod(left, size)
            width = 2 if small_unit in ("m", "s") else 1
            return f"{big}{unit} {rest // small_size:0{width}d}{small_unit}"
    return f"{left}s"  # not reached: every value of a minute or more has a unit


def hop_delay(seconds: float) -> str:
    """A Received hop's delay after the previous one; a negative one is clock skew (a hop
    cannot be stamped before the hop that handed it the message)."""
    if seconds < 0:
        return f"-{human_duration(seconds)} (clock skew)"
    return f"+{human_duration(seconds)}"
