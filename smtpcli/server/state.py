"""The state one capture server's sessions share: config, faults, stores, counters, events.

The SMTP side (``protocol``), the HTTP side (``http``) and the lifecycle (``runner``) all work
on one ``ServerState``; it knows none of them, so each can import it without a circle.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smtpcli.server.config import ServeConfig
from smtpcli.server.storage import (
    JsonlStore,
    MaildirStore,
    MboxStore,
    MemoryStore,
    Store,
    StoredMessage,
)

# The reply to anything but QUIT while shutting down (RFC 5321 3.8: 421 before closing).
SHUTDOWN_REPLY = "421 4.3.2 Service shutting down, try again later"

EventSink = Callable[[dict[str, Any]], None]


@dataclass
class ServeSummary:
    """What happened during a run (the shutdown event carries it)."""

    messages: int = 0
    recipients: int = 0
    bytes: int = 0
    connections: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    reason: str = ""
    elapsed: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages, "recipients": self.recipients, "bytes": self.bytes,
            "connections": self.connections, "faults": dict(self.faults), "errors": self.errors,
            "reason": self.reason, "elapsed_s": round(self.elapsed, 3),
        }


class ServerState:
    """Shared by every session of one server: config, faults, stores, counters, events."""

    def __init__(self, config: ServeConfig, on_event: EventSink | None) -> None:
        self.config = config
        self.faults = config.fault_plan()
        self.on_event = on_event
        self.run_id = f"{int(time.time()):x}{os.getpid():x}"
        self.summary = ServeSummary()
        self.closing = False
        self.sessions: set[Any] = set()
        self.stores: list[Store] = []
        self.memory: MemoryStore | None = None
        self.mailbox: Any = None  # smtpcli.server.mailbox.Mailbox with --http
        self.done = asyncio.Event()
        self._conn_ids = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def emit(self, event: str, **data: Any) -> None:
        if event == "error":
            self.summary.errors += 1
        if self.on_event is not None:
            self.on_event({"event": event, "time": round(time.time(), 3), **data})

    def open_stores(self) -> None:
        c = self.config
        if c.maildir:
            self.stores.append(MaildirStore(c.maildir, fsync=c.fsync))
        if c.mbox:
            self.stores.append(MboxStore(c.mbox, fsync=c.fsync))
        if c.jsonl:
            self.stores.append(JsonlStore(c.jsonl, fsync=c.fsync))
        if c.memory or not self.stores:
            self.memory = MemoryStore()
            self.stores.append(self.memory)

    def close_stores(self) -> None:
        for store in self.stores:
            store.close()

    async def store(self, msg: StoredMessage, conn: int | None = None) -> None:
        """Write to every store (disk ones in a worker thread), then count and report."""
        disk = [s for s in self.stores if s is not self.memory]
        if disk:
            msg.locations = await asyncio.to_thread(lambda: [s.store(msg) for s in disk])
        if self.memory is not None:
            self.memory.store(msg)
        if self.mailbox is not None:
            self.mailbox.add(msg)
        s = self.summary
        s.messages += 1
        s.recipients += len(msg.rcpt_tos)
        s.bytes += msg.size
        self.emit("message", conn=conn, **msg.envelope_dict(),
                  stored=msg.locations or ["memory"])
        if self.config.count is not None and s.messages >= self.config.count:
            self.stop("count")

    def connection_opened(self, smtp: Any, peer: str | None) -> None:
        self._conn_ids += 1
        smtp.conn_id = self._conn_ids
        self.sessions.add(smtp)
        self.summary.connections += 1
        self.emit("connect", conn=smtp.conn_id, peer=peer)

    def connection_closed(self, smtp: Any) -> None:
        if smtp in self.sessions:
            self.sessions.discard(smtp)
            self.emit("disconnect", conn=smtp.conn_id)
        self._check_idle()

    def fault_event(self, smtp: Any, stage: str, action: str, **data: Any) -> None:
        self.summary.faults[f"{stage}:{action}"] += 1
        self.emit("fault", conn=getattr(smtp, "conn_id", None), stage=stage, action=action, **data)

    def transaction_done(self, smtp: Any) -> None:
        if self.closing:
            self._check_idle()

    def _check_idle(self) -> None:
        if not any(getattr(s, "busy", False) for s in self.sessions):
            self._idle.set()

    def stop(self, reason: str) -> None:
        """Ask the server to shut down (idempotent; the first reason wins)."""
        if not self.summary.reason:
            self.summary.reason = reason
        self.done.set()

    async def drain(self, grace: float) -> None:
        """Wait (up to ``grace`` s) for transfers in progress, then close every session."""
        self.closing = True
        self._idle.clear()
        self._check_idle()
        deadline = time.monotonic() + grace
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)
        # A client that just got its 250 usually says QUIT next: give it a moment to leave.
        quiet = min(1.0, max(0.0, deadline - time.monotonic()))
        end = time.monotonic() + quiet
        while self.sessions and time.monotonic() < end:
            await asyncio.sleep(0.02)
        for smtp in list(self.sessions):
            transport = smtp.transport
            if transport is not None and not transport.is_closing():
                with contextlib.suppress(Exception):
                    transport.write(SHUTDOWN_REPLY.encode() + b"\r\n")
                transport.close()
        # Let the closes reach connection_lost.
        for _ in range(20):
            if not self.sessions:
                break
            await asyncio.sleep(0.01)
