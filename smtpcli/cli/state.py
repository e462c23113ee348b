"""Process-wide CLI state the error handler needs (json mode, traceback, current command)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CliState:
    json: bool = False
    traceback: bool = False
    command: str | None = None


STATE = CliState()
