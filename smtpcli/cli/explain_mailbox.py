"""`smtpcli explain --mailbox PATH`: every message of a Maildir or mbox, explained.

JSON Lines with --json (one line per recipient record, one per unreadable message, then a
summary line); as text, summary tables. Progress goes to stderr when it is a terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from smtpcli.errors import ExitCode, UsageError
from smtpcli.render.style import Painter

_TABLES = (("by_cause", "records by cause"), ("by_class", "records by class"),
           ("by_domain", "records by recipient domain (top 10)"),
           ("top_servers", "top rejecting servers"))


class _Progress:
    """"N messages" on one stderr line, rewritten in place (only on a terminal)."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.done = 0
        self.on = sys.stderr.isatty()

    def step(self) -> None:
        self.done += 1
        if self.on and (self.done % 25 == 0 or self.done == self.total):
            if self.total:
                frac = self.done / self.total
                bar = "#" * int(frac * 30)
                sys.stderr.write(f"\r[{bar:<30}] {self.done}/{self.total} messages ")
            else:
                sys.stderr.write(f"\r{self.done} messages ")
            sys.stderr.flush()

    def clear(self) -> None:
        if self.on:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()


def _table_lines(summary: dict[str, object], paint: Painter) -> Iterable[str]:
    for key, title in _TABLES:
        rows = summary[key]
        assert isinstance(rows, dict)
        yield paint(title, "bold")
        if not rows:
            yield "  (none)"
        width = max((len(str(k)) for k in rows), default=0)
        for name, count in rows.items():
            yield f"  {str(name):<{width}}  {count:>6}"
        yield ""


def run_mailbox(path: str, *, json_mode: bool, exit_status: bool = False) -> int:
    """Explain every message; returns the exit code: 0 (with ``exit_status``: 5 if any record
    is permanent, else 4 if any is transient), 2 when the mailbox cannot be read."""
    from smtpcli.codes.mailbox import Tally, count_messages, iter_messages, record_line, triage

    if path != "-" and not os.path.exists(path):
        raise UsageError(f"no such mailbox: {path}", hint="give a Maildir folder, an mbox "
                         "file, or '-' for an mbox on stdin")
    tally = Tally()
    progress = _Progress(count_messages(path) if path != "-" else None)
    emit: Callable[[dict[str, Any]], None] | None = None
    if json_mode:
        from smtpcli.render.json_out import render_json_line

        emit = render_json_line
    try:
        messages = iter_messages(path, sys.stdin.buffer if path == "-" else None)
        for label, raw in messages:
            result = triage(label, raw)
            tally.add(result)
            progress.step()
            if result.kind in ("malformed", "unexplained"):
                if emit is not None:
                    emit({"type": "error", "file": label, "message_id": result.message_id,
                          "kind": result.kind, "error": result.error})
                else:
                    progress.clear()
                    sys.stderr.write(f"smtpcli: {label}: {result.kind}: {result.error}\n")
            elif emit is not None:
                for rec in result.records:
                    emit(record_line(result, rec))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    finally:
        progress.clear()
    summary = tally.to_dict()
    code = ExitCode.OK
    if exit_status and tally.classes["permanent"]:
        code = ExitCode.PERMANENT
    elif exit_status and tally.classes["transient"]:
        code = ExitCode.TRANSIENT
    if emit is not None:
        emit({"type": "summary", "command": "explain", "mailbox": path, **summary})
        return int(code)
    paint = Painter.for_stream(sys.stdout)
    lines = list(_table_lines(summary, paint))
    lines.append(
        f"{summary['messages']} messages: {summary['bounces']} bounces with "
        f"{summary['records']} recipient records, {summary['skipped']} not bounces (skipped), "
        f"{summary['malformed']} malformed, {summary['unexplained']} unexplained")
    sys.stdout.write("\n".join(lines) + "\n")
    return int(code)
