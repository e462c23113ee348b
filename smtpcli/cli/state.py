"""Process-wide CLI state the error handler needs (json mode, traceback, current command)."""

from __future__ import annotations


class CliState:
    """A plain class: it is created on every start-up, ``--help`` included, where a
    dataclass would cost more than everything else in this module."""

    def __init__(self) -> None:
        self.json = False
        self.traceback = False
        self.command: str | None = None


STATE = CliState()
