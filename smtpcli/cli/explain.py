"""`smtpcli explain`: what a mail server said, and what to do about it.

Thin layer: read the input (arguments, a file, or stdin) -> smtpcli.codes -> Report -> finish().
Imports nothing heavy: this command must start about as fast as `swaks --version`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from typing import Any

import click

from smtpcli.cli.options import finish, json_option
from smtpcli.errors import ExitCode, UsageError
from smtpcli.render.style import Painter
from smtpcli.results import Report, Status

# A bare code is never read as a file name, even if such a file exists.
_CODE_ONLY = re.compile(r"^\s*#?(?:[2-5]\d\d|[245]\.\d{1,3}\.\d{1,3})\s*$")
_STATUS = {"success": Status.OK, "intermediate": Status.OK, "transient": Status.WARN,
           "permanent": Status.FAIL}


def _complete_codes(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion: basic, enhanced and provider codes starting with what was typed."""
    from click.shell_completion import CompletionItem

    from smtpcli.codes.explainer import completion_candidates

    return [CompletionItem(code, help=title[:70])
            for code, title in completion_candidates(incomplete.lstrip("#"))]


def _read_input(inputs: tuple[str, ...]) -> bytes | str:
    """The bytes of a file or stdin (a message keeps its charsets), or the arguments' text."""
    if not inputs:
        raise UsageError("nothing to explain",
                         hint="give a code (550, 5.7.26), a reply line, a bounce file, or '-'")
    if inputs == ("-",):
        return sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
    # A single argument is a file only when it names an existing one: provider replies are
    # full of URLs and paths ("550 5.7.1 Blocked - see https://example.com/x").
    if len(inputs) == 1 and not _CODE_ONLY.match(inputs[0]):
        path = inputs[0]
        if os.path.isfile(path):
            try:
                with open(path, "rb") as fh:
                    return fh.read()
            except OSError as exc:
                raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
        if os.path.isdir(path):
            raise UsageError(f"{path} is a directory, not a reply or bounce file",
                             hint="use --mailbox for a Maildir")
    return " ".join(inputs)


def _looks_like_path(text: str) -> bool:
    """One word that reads as a file name: said as 'no such file' when it holds no code."""
    return (len(text.split()) == 1 and not _CODE_ONLY.match(text)
            and (os.sep in text or text.lower().endswith((".eml", ".msg", ".txt", ".dsn"))))


def _label(rec: dict[str, Any]) -> str:
    parts = [str(rec["code"])] if rec["code"] is not None else []
    if rec["enhanced"]:
        parts.append(rec["enhanced"])
    return " ".join(parts) or "(no code)"  # a bounce that states no SMTP code


def _record_lines(report: Report, paint: Painter) -> Iterable[str]:
    for rec in report.facts.get("records", []):
        head = f"{paint(_label(rec), 'bold')}  {paint(rec['class'], rec['class'])}"
        if rec["title"]:
            head += f"  {rec['title']}"
        if rec["recipient"]:
            head += f"  {paint('for', 'dim')} {rec['recipient']}"
            if rec["action"]:
                head += f" ({rec['action']})"
        yield head
        cells = [("subject", rec["subject"]), ("provider", rec["provider"]),
                 ("cause", rec["cause"]),
                 ("retry helps", "yes" if rec["retry_helps"] else "no")]
        yield "  " + "   ".join(f"{paint(k + ':', 'dim')} {v}" for k, v in cells if v)
        for note in rec["notes"]:
            yield f"  {paint('note:', 'dim')} {note}"


def _list_lines(report: Report, paint: Painter) -> Iterable[str]:
    for row in report.facts.get("codes", []):
        cause = f" [{row['cause']}]" if row.get("cause") else ""
        provider = f" ({row['provider']})" if row.get("provider") else ""
        yield (f"{paint(row['code'].ljust(9), row['class'])} {row['kind']:<8} "
               f"{row['title']}{provider}{cause}")


def _summary(records: list[dict[str, Any]]) -> str:
    if len(records) == 1:
        rec = records[0]
        if rec["class"] in ("success", "intermediate"):
            return f"{_label(rec)}: {rec['class']} reply, nothing to fix"
        who = f" at {rec['provider']}" if rec["provider"] else ""
        retry = "a later retry may succeed" if rec["retry_helps"] else \
            "retrying unchanged will not help"
        return f"{_label(rec)}: {rec['class']} rejection{who}, cause {rec['cause']}; {retry}"
    counts: dict[str, int] = {}
    for rec in records:
        counts[rec["class"]] = counts.get(rec["class"], 0) + 1
    shown = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    return f"{len(records)} recipients: {shown}"


@click.command("explain", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, metavar="[CODE|REPLY|FILE|-]...",
                shell_complete=_complete_codes)
@click.option("--list", "list_mode", is_flag=True,
              help="List the known codes (basic, enhanced, provider codes).")
@click.option("--class", "klass", type=click.IntRange(2, 5), metavar="DIGIT",
              help="With --list: only this class (2, 3, 4 or 5).")
@click.option("--subject", type=click.IntRange(0, 7), metavar="DIGIT",
              help="With --list: only enhanced codes of this subject (X.DIGIT.Z).")
@click.option("--mailbox", "mailbox", metavar="PATH",
              help="Explain every message of a Maildir or mbox ('-': an mbox on stdin): "
                   "summary tables, or JSON Lines per recipient with --json.")
@click.option("--exit-status", is_flag=True,
              help="Exit 4 for a transient and 5 for a permanent reply (worst of all recipients).")
@json_option
def command(inputs: tuple[str, ...], list_mode: bool, klass: int | None, subject: int | None,
            mailbox: str | None, exit_status: bool, json_mode: bool) -> int:
    """Explain SMTP reply codes, rejection lines and bounces.

    Input: a basic code (550), an enhanced code (5.7.26, #5.3.4), a whole reply line, a
    multi-line reply, a bounce or DSN message file, or '-' for stdin. A single argument is
    read as a file only when that file exists. --mailbox triages a Maildir or mbox of bounces.

    \b
    Examples:
      smtpcli explain 550 5.7.26
      smtpcli explain "550 5.7.1 Service unavailable; client [192.0.2.1] blocked"
      smtpcli explain bounce.eml
      smtpcli explain --list --class 5 --subject 7
      smtpcli explain --mailbox ~/Maildir/.bounces --json
    """
    if mailbox is not None:
        if inputs or list_mode:
            raise UsageError("--mailbox takes no codes, replies or files, and no --list")
        from smtpcli.cli.explain_mailbox import run_mailbox

        return run_mailbox(mailbox, json_mode=json_mode, exit_status=exit_status)
    if list_mode:
        if inputs:
            raise UsageError("--list takes no codes", hint="use --class and --subject to filter")
        from smtpcli.codes.explainer import list_codes

        rows = list_codes(klass, subject)
        report = Report(command="explain", target="--list",
                        facts={"codes": rows, "count": len(rows)},
                        summary=f"{len(rows)} codes")
        return finish(report, json_mode=json_mode, facts_renderer=_list_lines)
    if klass is not None or subject is not None:
        raise UsageError("--class and --subject only filter --list")

    from smtpcli.codes.explainer import explain_bytes, explain_text

    data = _read_input(inputs)
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    try:
        kind, records = explain_bytes(data) if isinstance(data, bytes) else explain_text(data)
    except UsageError:
        if len(inputs) == 1 and _looks_like_path(inputs[0]) and not os.path.exists(inputs[0]):
            raise UsageError(f"no such file: {inputs[0]}") from None
        raise
    target = " ".join(text.split())[:80]
    report = Report(command="explain", target=target)
    report.facts = {"input": kind, "records": records}
    if len(records) == 1:
        report.facts.update(records[0])
    for rec in records:
        report.add(
            f"explain.{rec['cause'] or rec['class']}", _STATUS[rec["class"]], rec["summary"],
            fix=rec["fix"], reference="; ".join(rec["references"]) or None,
            subject=rec["recipient"],
        )
    report.summary = _summary(records)
    code = ExitCode.OK
    if exit_status:
        classes = {rec["class"] for rec in records}
        if "permanent" in classes:
            code = ExitCode.PERMANENT
        elif "transient" in classes:
            code = ExitCode.TRANSIENT
    report.exit_code = int(code)
    return finish(report, json_mode=json_mode, facts_renderer=_record_lines)
