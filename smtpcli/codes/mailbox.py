"""Triage a mailbox of bounces: every message of a Maildir or an mbox, explained.

`iter_messages` yields (label, bytes) per message without parsing it; `triage` turns one
message into a MessageResult (its recipient records, or why it was skipped); `Tally` adds
results up into the summary tables. One process for the whole mailbox: the code tables and
rules are loaded once.
"""

from __future__ import annotations

import email
import email.message
import os
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

from smtpcli.codes.bounce import is_bounce, looks_like_message
from smtpcli.codes.explainer import explain_message


def _maildir_files(path: str) -> list[str]:
    """Message files of a Maildir (new/ then cur/, by name), or of a plain folder of files."""
    subdirs = [os.path.join(path, d) for d in ("new", "cur")
               if os.path.isdir(os.path.join(path, d))]
    folders = subdirs or [path]
    files = []
    for folder in folders:
        for name in sorted(os.listdir(folder)):
            full = os.path.join(folder, name)
            if not name.startswith(".") and os.path.isfile(full):
                files.append(full)
    return files


def is_maildir(path: str) -> bool:
    return os.path.isdir(path)


def count_messages(path: str) -> int | None:
    """How many messages a Maildir holds (None for an mbox: counting means reading it)."""
    return len(_maildir_files(path)) if is_maildir(path) else None


def split_mbox(stream: IO[bytes], name: str) -> Iterator[tuple[str, bytes]]:
    """Messages of an mbox: each starts at a "From " line at the start of the file or after
    a blank line (RFC 4155); ">From " quoting is undone."""
    lines: list[bytes] = []
    number = 0
    previous_blank = True
    for line in stream:
        if line.startswith(b"From ") and previous_blank:
            if lines:
                number += 1
                yield f"{name}#{number}", b"".join(lines)
            lines = []
            previous_blank = False
            continue
        if line.startswith(b">From "):
            line = line[1:]
        lines.append(line)
        previous_blank = not line.strip()
    if any(part.strip() for part in lines):
        number += 1
        yield f"{name}#{number}", b"".join(lines)


def iter_messages(path: str, stdin: IO[bytes] | None = None) -> Iterator[tuple[str, bytes]]:
    """(label, raw bytes) of every message: a Maildir (or folder of message files), an mbox
    file, or ``-`` for an mbox on ``stdin``."""
    if path == "-":
        assert stdin is not None
        yield from split_mbox(stdin, "-")
        return
    if is_maildir(path):
        for file in _maildir_files(path):
            with open(file, "rb") as fh:
                yield file, fh.read()
        return
    with open(path, "rb") as fh:
        yield from split_mbox(fh, path)


class MessageResult:
    """What one message of the mailbox turned out to be."""

    __slots__ = ("label", "kind", "records", "message_id", "date", "error")

    def __init__(self, label: str, kind: str, records: list[dict[str, Any]] | None = None,
                 message_id: str | None = None, date: str | None = None,
                 error: str | None = None) -> None:
        self.label = label
        self.kind = kind  # "bounce", "skipped" (not a bounce), "malformed", "unexplained"
        self.records = records or []
        self.message_id = message_id
        self.date = date
        self.error = error


def _clean(value: Any) -> str | None:
    return " ".join(str(value).split()) or None if value is not None else None


def triage(label: str, raw: bytes) -> MessageResult:
    """Explain one message; never raises (a broken message is a "malformed" result)."""
    try:
        text_head = raw[:4096].decode("utf-8", "replace")
        if not raw.strip() or not looks_like_message(text_head):
            return MessageResult(label, "malformed", error="no message header fields")
        msg = email.message_from_bytes(raw)
        message_id, date = _clean(msg.get("Message-ID")), _clean(msg.get("Date"))
        if not is_bounce(msg):
            return MessageResult(label, "skipped", message_id=message_id, date=date)
        explained = explain_message(msg, raw.decode("utf-8", "replace"))
        if explained is None:
            return MessageResult(label, "unexplained", message_id=message_id, date=date,
                                 error="a bounce that states no failed recipient or reply")
        return MessageResult(label, "bounce", explained[1], message_id, date)
    except Exception as exc:  # one broken message must not end the run
        return MessageResult(label, "malformed", error=f"{type(exc).__name__}: {exc}")


class Tally:
    """The summary of a run: messages by kind, records by cause, class, domain and server."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.causes: Counter[str] = Counter()
        self.classes: Counter[str] = Counter()
        self.domains: Counter[str] = Counter()
        self.servers: Counter[str] = Counter()
        self.records = 0

    def add(self, result: MessageResult) -> None:
        self.kinds[result.kind] += 1
        for rec in result.records:
            self.records += 1
            self.causes[rec["cause"] or "none"] += 1
            self.classes[rec["class"]] += 1
            recipient = rec.get("recipient") or ""
            self.domains[recipient.rpartition("@")[2].lower() or "(unknown)"] += 1
            if rec.get("server"):
                self.servers[rec["server"].lower()] += 1

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        return {
            "messages": sum(self.kinds.values()),
            "bounces": self.kinds["bounce"],
            "skipped": self.kinds["skipped"],
            "malformed": self.kinds["malformed"],
            "unexplained": self.kinds["unexplained"],
            "records": self.records,
            "by_cause": dict(self.causes.most_common()),
            "by_class": dict(self.classes.most_common()),
            "by_domain": dict(self.domains.most_common(top)),
            "top_servers": dict(self.servers.most_common(top)),
        }


def record_line(result: MessageResult, rec: dict[str, Any]) -> dict[str, Any]:
    """One JSON Lines record: the message's file/Message-ID/Date, then the explanation."""
    return {"type": "record", "file": result.label, "message_id": result.message_id,
            "date": result.date, **rec}
