"""The transcript of one SMTP conversation: every line sent and received, TLS and info events,
each with a timestamp and the stage it belongs to, plus per-stage timings.

Listeners get every event as it happens (``-v`` streams them to stderr); ``to_list`` is what lands
in JSON as ``facts.transcript``. Secrets are redacted *before* an event is stored or streamed, so
no listener, JSON document or log can see them unless redaction is switched off (--show-secrets).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from smtpcli.records import FrozenRecord, Record

Direction = Literal["sent", "recv", "tls", "info"]

# Stages in conversation order; ``tls`` covers the implicit-TLS handshake and STARTTLS.
STAGES = ("connect", "tls", "banner", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "quit")

REDACTED = "[redacted]"


class Event(FrozenRecord):
    """One transcript line. ``t`` is milliseconds since the transcript started."""

    __slots__ = ("t", "stage", "dir", "line")
    t: float
    stage: str
    dir: Direction
    line: str

    def __init__(self, t: float, stage: str, dir: Direction, line: str) -> None:
        self._set(t=t, stage=stage, dir=dir, line=line)

    def to_dict(self) -> dict[str, Any]:
        return {"t": self.t, "stage": self.stage, "dir": self.dir, "line": self.line}


Listener = Callable[[Event], None]


class Transcript(Record):
    """Collects events and stage timings; thread-unsafe by design (one connection, one thread)."""

    __slots__ = ("redact_secrets", "events", "timings", "listeners", "stage", "start",
                 "secret_mode", "failed_stage")

    def __init__(self, redact_secrets: bool = True) -> None:
        self.redact_secrets = redact_secrets
        self.events: list[Event] = []
        self.timings: dict[str, float] = {}
        self.listeners: list[Listener] = []
        self.stage = "connect"
        self.start = time.monotonic()
        # While True, sent lines are secret material (AUTH payloads) and are redacted.
        self.secret_mode = False
        # The innermost stage an exception escaped from (what failed), for error reports.
        self.failed_stage: str | None = None

    def elapsed_ms(self) -> float:
        return round((time.monotonic() - self.start) * 1000, 1)

    def add(self, direction: Direction, line: str, stage: str | None = None) -> Event:
        """Record (and stream) one event; AUTH payloads are redacted here (see ``redact``)."""
        if direction == "sent" and self.secret_mode and self.redact_secrets:
            line = redact_auth_line(line)
        event = Event(self.elapsed_ms(), stage or self.stage, direction, line)
        self.events.append(event)
        for listener in self.listeners:
            listener(event)
        return event

    def info(self, line: str) -> Event:
        return self.add("info", line)

    @contextmanager
    def in_stage(self, stage: str) -> Iterator[None]:
        """Run a block as ``stage``; its wall time adds to ``timings[stage]`` (ms)."""
        previous = self.stage
        self.stage = stage
        began = time.monotonic()
        try:
            yield
        except BaseException:
            if self.failed_stage is None:
                self.failed_stage = stage
            raise
        finally:
            spent = (time.monotonic() - began) * 1000
            self.timings[stage] = round(self.timings.get(stage, 0.0) + spent, 1)
            self.stage = previous

    @contextmanager
    def secret(self) -> Iterator[None]:
        """Sent lines inside this block carry credentials (RFC 4954 AUTH exchanges)."""
        old = self.secret_mode
        self.secret_mode = True
        try:
            yield
        finally:
            self.secret_mode = old

    def to_list(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.events]

    def timings_ms(self) -> dict[str, float]:
        out = dict(self.timings)
        out["total"] = self.elapsed_ms()
        return out


def redact_auth_line(line: str) -> str:
    """``AUTH PLAIN <b64>`` -> ``AUTH PLAIN [redacted]``; any other line -> ``[redacted]``.

    The mechanism name stays visible (it is not a secret and it is what people debug); the
    initial response and every continuation line (RFC 4954 4) are hidden. An empty continuation
    (the client's answer to an error challenge in XOAUTH2) carries nothing and stays empty.
    """
    if not line.strip():
        return line
    parts = line.split(" ", 2)
    if parts[0].upper() == "AUTH" and len(parts) >= 2:
        return f"AUTH {parts[1]}" + (f" {REDACTED}" if len(parts) > 2 else "")
    return REDACTED
