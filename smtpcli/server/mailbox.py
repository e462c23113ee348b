"""The mailbox the HTTP API reads: every accepted message, read flags, deletion, change events.

The SMTP side calls ``add()`` and the API reads on serve's event loop, but big messages are
parsed in worker threads, so every method takes one lock and hands out snapshots. Parsing is
lazy: the searchable facts and the list summary of a message are computed once, on first use
(or as it arrives, once someone has searched); full parses (text, HTML, attachments) are kept
for a few recently viewed messages only.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smtpcli.server import message_view as view
from smtpcli.server.search import Facts
from smtpcli.server.storage import StoredMessage

Listener = Callable[[str, dict[str, Any]], None]
_PARSED_CACHE = 32


@dataclass
class Entry:
    msg: StoredMessage
    read: bool = False
    facts: Facts | None = None
    summary_base: dict[str, Any] | None = None


class Mailbox:
    """Messages by ID in arrival order, with read flags and listeners for changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._unread = 0
        self._parsed: OrderedDict[str, view.ParsedMessage] = OrderedDict()
        self._listeners: list[Listener] = []
        self.deleted = 0
        self.bytes = 0  # sizes of the messages held, as stored
        self.started = time.time()
        # Set once a client searches: from then on each new message is parsed as it arrives
        # (between SMTP callbacks), so a poll only scans; nobody searching, nobody pays.
        self.keep_warm = False

    # -- changes ---------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        """``listener(kind, data)`` is called (in the caller's thread) on new/delete/read."""
        self._listeners.append(listener)

    def _notify(self, kind: str, data: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            with contextlib.suppress(Exception):  # a broken listener must not lose mail
                listener(kind, data)

    def add(self, msg: StoredMessage) -> None:
        with self._lock:
            self._entries[msg.id] = Entry(msg)
            self._unread += 1
            self.bytes += len(msg.trace) + len(msg.content)
        self._notify("new", {"ID": msg.id})

    def delete(self, ids: Iterable[str] | None = None) -> list[str]:
        """Delete these IDs (unknown ones are ignored) or all; Maildir files go too."""
        with self._lock:
            if ids is None:
                gone = list(self._entries.values())
                self._entries.clear()
            else:
                gone = [e for i in ids if (e := self._entries.pop(i, None)) is not None]
            self._unread -= sum(1 for e in gone if not e.read)
            self.deleted += len(gone)
            self.bytes -= sum(len(e.msg.trace) + len(e.msg.content) for e in gone)
            for e in gone:
                self._parsed.pop(e.msg.id, None)
        for e in gone:
            _unlink_maildir_copies(e.msg)
        if gone:
            self._notify("delete", {"IDs": [e.msg.id for e in gone]})
        return [e.msg.id for e in gone]

    def set_read(self, read: bool, ids: Iterable[str] | None = None) -> list[str]:
        with self._lock:
            chosen = (list(self._entries.values()) if ids is None
                      else [e for i in ids if (e := self._entries.get(i)) is not None])
            changed = [e for e in chosen if e.read is not read]
            for e in changed:
                e.read = read
                if e.facts is not None:
                    e.facts.read = read
            self._unread += -len(changed) if read else len(changed)
        if changed:
            self._notify("read", {"IDs": [e.msg.id for e in changed], "Read": read})
        return [e.msg.id for e in changed]

    # -- reading ---------------------------------------------------------------------------
    @property
    def total(self) -> int:
        return len(self._entries)

    @property
    def unread(self) -> int:
        return self._unread

    def get(self, msg_id: str) -> Entry | None:
        """By ID, or the newest for ``latest`` (as Mailpit)."""
        with self._lock:
            if msg_id == "latest":
                return next(reversed(self._entries.values()), None)
            return self._entries.get(msg_id)

    def page(self, start: int, limit: int) -> list[Entry]:
        """``newest_first()[start:start + limit]`` without copying the whole mailbox."""
        with self._lock:
            return list(itertools.islice(reversed(self._entries.values()), start, start + limit))

    def newest_first(self) -> list[Entry]:
        with self._lock:
            return list(reversed(self._entries.values()))

    def parsed(self, entry: Entry) -> view.ParsedMessage:
        """The full parse of a message (kept for the few most recently used)."""
        key = entry.msg.id
        with self._lock:
            hit = self._parsed.get(key)
            if hit is not None:
                self._parsed.move_to_end(key)
                return hit
        parsed = view.parse(entry.msg.stored)
        with self._lock:
            self._parsed[key] = parsed
            while len(self._parsed) > _PARSED_CACHE:
                self._parsed.popitem(last=False)
        return parsed

    def _prepare(self, entry: Entry) -> None:
        """Full parse: the list summary, and the search facts if not had yet."""
        parsed = view.parse(entry.msg.stored)
        base = view.summary(entry.msg, parsed, entry.read)
        entry.summary_base = base
        if entry.facts is None:
            entry.facts = _facts(entry, parsed, base)

    def summary(self, entry: Entry) -> dict[str, Any]:
        if entry.summary_base is None:
            self._prepare(entry)
        assert entry.summary_base is not None
        return {**entry.summary_base, "Read": entry.read}

    def facts(self, entry: Entry) -> Facts:
        if entry.facts is None:
            self._prepare(entry)
        assert entry.facts is not None
        return entry.facts


def _joined(addrs: list[dict[str, str]]) -> str:
    return "\n".join(f"{a['Name']} <{a['Address']}>" for a in addrs).lower()


def _facts(entry: Entry, parsed: view.ParsedMessage, base: dict[str, Any]) -> Facts:
    return Facts(
        text=view.search_text(entry.msg, parsed),
        to=_joined(base["To"]), from_=_joined([base["From"]]), cc=_joined(base["Cc"]),
        bcc=_joined(base["Bcc"]), subject=base["Subject"].lower(),
        message_id=base["MessageID"].lower(), reply_to=_joined(base["ReplyTo"]),
        filenames="\n".join(p.filename for p in parsed.attachments).lower(),
        read=entry.read, attachments=len(parsed.attachments), inline=len(parsed.inline),
    )


def _unlink_maildir_copies(msg: StoredMessage) -> None:
    """Remove the message's Maildir file (mbox and JSON Lines files are append-only logs)."""
    for loc in msg.locations:
        path = Path(loc)
        if path.parent.name in ("new", "cur") and (path.parent.parent / "tmp").is_dir():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


# -- messages already in a store when serve starts ----------------------------------------------
def _loaded(key: str, n: int, content: bytes, when: float, location: str | None) -> StoredMessage:
    import email.utils
    import hashlib

    # The SMTP envelope of an earlier run is not kept in the files: Return-Path (if a delivery
    # agent added one) is the best evidence of MAIL FROM.
    head = content.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    rp = next((line.split(":", 1)[1] for line in head.split("\r\n")
               if line.lower().startswith("return-path:")), "")
    return StoredMessage(
        seq=n, id=f"{key}.{hashlib.sha256(f'{location}:{n}'.encode()).hexdigest()[:10]}",
        received_at=when, peer=None, helo=None,
        mail_from=email.utils.parseaddr(rp)[1], rcpt_tos=[], mail_options=[], rcpt_options=[],
        content=content, locations=[location] if location else [],
    )


def load_maildir(path: str) -> list[StoredMessage]:
    """Messages in ``new/`` and ``cur/`` of a Maildir, oldest first."""
    root = Path(path)
    files = [p for sub in ("new", "cur") if (root / sub).is_dir() for p in (root / sub).iterdir()
             if p.is_file() and not p.name.startswith(".")]
    files.sort(key=lambda p: (p.stat().st_mtime, p.name))
    out = []
    for n, p in enumerate(files, 1):
        with contextlib.suppress(OSError):
            out.append(_loaded("maildir", n, p.read_bytes(), p.stat().st_mtime, str(p)))
    return out


# The standard library reads mboxo; serve writes mboxrd, where every ">*From " got one more ">".
_MBOXRD_QUOTED = re.compile(rb"^>(>*From )", re.MULTILINE)


def load_mbox(path: str) -> list[StoredMessage]:
    """Messages of an mbox file (mboxrd quoting undone by the standard library's reader)."""
    import mailbox as stdlib_mailbox

    if not Path(path).is_file():
        return []
    out = []
    box = stdlib_mailbox.mbox(path, create=False)
    try:
        for n, msg in enumerate(box, 1):
            data = msg.as_bytes().replace(b"\r\n", b"\n")
            data = _MBOXRD_QUOTED.sub(rb"\1", data).replace(b"\n", b"\r\n")
            out.append(_loaded("mbox", n, data, Path(path).stat().st_mtime, None))
    finally:
        box.close()
    return out
