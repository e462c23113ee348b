"""Where accepted messages go: Maildir, mbox, JSON Lines, memory.

Every store writes (and, unless ``fsync=False``, fsyncs) before the server answers 250, so a
message the client saw accepted survives the server being killed (RFC 5321 6.1: once a server
accepts responsibility it must not lose the message).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from smtpcli.errors import UsageError


@dataclass
class StoredMessage:
    """One accepted message with its envelope and session facts."""

    seq: int
    id: str
    received_at: float
    peer: str | None
    helo: str | None
    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    rcpt_options: list[str]
    content: bytes  # as received: CRLF line ends, dot-unstuffed, without the final ".\r\n"
    tls: dict[str, Any] | None = None
    auth: dict[str, Any] | None = None
    smtputf8: bool = False
    locations: list[str] = field(default_factory=list)
    trace: bytes = b""  # the Received: header serve adds (RFC 5321 4.4), empty with --no-received
    transcript: list[str] = field(default_factory=list)  # the session so far (with --http)

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def stored(self) -> bytes:
        """What the stores write: the trace header, then the message exactly as received."""
        return self.trace + self.content

    def headers(self) -> list[list[str]]:
        """Header fields as [name, value] pairs (unfolded), in order."""
        parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
        msg = parser.parsebytes(self.content)
        return [[k, " ".join(str(v).split())] for k, v in msg.items()]

    def envelope_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seq": self.seq, "id": self.id,
            "received_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.received_at))
            + f".{int(self.received_at * 1000) % 1000:03d}Z",
            "peer": self.peer, "helo": self.helo, "mail_from": self.mail_from,
            "rcpt_tos": self.rcpt_tos, "size": self.size, "smtputf8": self.smtputf8,
            "tls": self.tls, "auth": self.auth,
        }
        if self.trace:
            out["received_header"] = " ".join(self.trace.decode("utf-8", "replace").split())
        if self.mail_options:
            out["mail_options"] = self.mail_options
        if self.rcpt_options:
            out["rcpt_options"] = self.rcpt_options
        return out


class Store(Protocol):
    name: str

    def store(self, msg: StoredMessage) -> str:
        """Write the message durably; return where it went."""
        ...

    def close(self) -> None: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class MaildirStore:
    """Maildir (one file per message): write to tmp/, fsync, rename into new/ (atomic)."""

    name = "maildir"

    def __init__(self, path: str, *, fsync: bool = True) -> None:
        self.root = Path(path)
        self.fsync = fsync
        try:
            for sub in ("tmp", "new", "cur"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create maildir {path!r}: {exc.strerror}") from None
        self._host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")

    def store(self, msg: StoredMessage) -> str:
        # Unique name per the Maildir convention: time.pid_seq.host
        name = f"{int(msg.received_at)}.M{time.time_ns() % 1_000_000_000}P{os.getpid()}Q{msg.seq}.{self._host}"
        tmp = self.root / "tmp" / name
        with open(tmp, "wb") as fh:
            fh.write(msg.stored)
            if self.fsync:
                fh.flush()
                os.fsync(fh.fileno())
        final = self.root / "new" / name
        os.replace(tmp, final)
        if self.fsync:
            _fsync_dir(self.root / "new")
        return str(final)

    def close(self) -> None:
        pass


_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)


def mboxrd_entry(msg: StoredMessage) -> bytes:
    """One mboxrd entry: From_ line, LF line ends, ``>``-quoted ``>*From `` lines, blank line."""
    sender = msg.mail_from or "MAILER-DAEMON"
    stamp = time.asctime(time.gmtime(msg.received_at))
    body = msg.stored.replace(b"\r\n", b"\n")
    body = _FROM_LINE.sub(rb">\1", body)
    if not body.endswith(b"\n"):
        body += b"\n"
    return f"From {sender} {stamp}\n".encode("utf-8", "replace") + body + b"\n"


class AppendStore:
    """Base for single-file stores: one append per message under a lock, then fsync."""

    name = "append"

    def __init__(self, path: str, *, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        self._lock = threading.Lock()
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(path, "ab")  # noqa: SIM115 - kept open for the server's lifetime
        except OSError as exc:
            raise UsageError(f"cannot open {path!r} for appending: {exc.strerror}") from None

    def entry(self, msg: StoredMessage) -> bytes:
        raise NotImplementedError

    def store(self, msg: StoredMessage) -> str:
        data = self.entry(msg)
        with self._lock:
            self._fh.write(data)
            self._fh.flush()
            if self.fsync:
                os.fsync(self._fh.fileno())
        return self.path

    def close(self) -> None:
        with self._lock:
            self._fh.close()


class MboxStore(AppendStore):
    name = "mbox"

    def entry(self, msg: StoredMessage) -> bytes:
        return mboxrd_entry(msg)


class JsonlStore(AppendStore):
    """One JSON object per message: envelope, headers, size, TLS and AUTH facts."""

    name = "jsonl"

    def entry(self, msg: StoredMessage) -> bytes:
        import hashlib

        record = msg.envelope_dict()
        record["headers"] = msg.headers()
        record["sha256"] = hashlib.sha256(msg.content).hexdigest()
        return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


class MemoryStore:
    """Keeps messages in a list (for in-process use and when nothing else is configured)."""

    name = "memory"

    def __init__(self) -> None:
        self.messages: list[StoredMessage] = []
        self._lock = threading.Lock()

    def store(self, msg: StoredMessage) -> str:
        with self._lock:
            self.messages.append(msg)
        return "memory"

    def close(self) -> None:
        pass
