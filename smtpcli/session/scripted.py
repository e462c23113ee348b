"""Scripted mode: stdin is not a terminal, so lines come from it and the transcript goes out.

The whole transcript, errors included (``!`` lines), goes to stdout; a failed run adds exactly
one ``smtpcli: ...`` line on stderr (``failure_line``). Exit code by the last reply to a command
other than the final QUIT (DESIGN exit codes: 0 for 2xx/3xx, 4 for 4xx, 5 for 5xx), 3 when the
last thing that happened was a failure to connect or a lost connection. The script stops at a
lost connection or a 421 (the server closing, RFC 5321 3.8): later lines would only fail.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

from smtpcli.errors import ExitCode, exit_code_for_reply
from smtpcli.results import Report, Status
from smtpcli.session.engine import Output, Session

PREFIX = {"sent": "C: ", "recv": "S: ", "tls": "*  ", "info": "*  ", "note": "#  ",
          "explain": "=  ", "cert": "   ", "error": "!  "}


def format_output(item: Output) -> str:
    """One output item as plain text lines (no colour: stdout is not a terminal)."""
    prefix = PREFIX.get(item.kind, "")
    return "\n".join(prefix + line for line in item.text.split("\n"))


def session_exit_code(session: Session) -> int:
    if session.last_error is not None:
        return int(ExitCode.INCOMPLETE)
    if session.last_reply is None:
        return int(ExitCode.OK)
    return int(exit_code_for_reply(session.last_reply.code))


def run_lines(session: Session, lines: Iterator[str]) -> None:
    """Feed lines to the session until input ends or it quits; then QUIT (not counted)."""
    for line in lines:
        if session.conn is None and (session.last_error is not None or session.closed_by_server):
            # Connect failed, the connection was lost, or a 421 closed it: what follows could
            # only fail, and its errors would hide the one that matters.
            session.info("script stopped: no connection to send the remaining lines on")
            return
        session.handle(line.rstrip("\r\n"))
        if session.done:
            return
    if session.conn is not None:
        last_reply, last_error = session.last_reply, session.last_error
        session.quit()
        session.last_reply, session.last_error = last_reply, last_error


def session_report(session: Session, code: int) -> Report:
    """The transcript as a Report (``--json``)."""
    report = Report(command="session", target=session.target.display if session.target else None)
    last = session.last_reply
    if session.last_error is not None:
        report.add("session.incomplete", Status.ERROR, session.last_error.one_line())
    elif last is not None:
        status = Status.OK if last.code < 400 else Status.FAIL
        report.add("session.last-reply", status, last.one_line(), data=last.to_dict())
    report.facts["transcript"] = session.transcript.to_list()
    report.facts["timings"] = session.transcript.timings_ms()
    if last is not None:
        report.facts["last_reply"] = last.to_dict()
    report.summary = last.one_line() if last else "no reply"
    if session.last_error is not None:
        # As send does: the failure is the summary, and facts.error says what and where.
        report.facts["error"] = {"kind": session.last_error.kind,
                                 "message": session.last_error.one_line(),
                                 "stage": session.transcript.failed_stage or
                                 session.transcript.stage}
        report.summary = session.last_error.one_line()
    report.exit_code = code
    return report


def failure_line(session: Session, code: int) -> str | None:
    """The one line (without ``smtpcli: ``) saying why a scripted run did not succeed."""
    if code == ExitCode.OK:
        return None
    if session.last_error is not None:
        return session.last_error.one_line()
    where = session.target.display if session.target else "the server"
    reply = session.last_reply.one_line() if session.last_reply else "no reply"
    if len(reply) > 200:
        reply = reply[:200] + "..."
    return f"{where} answered the last command with {reply}"


def run_scripted(session: Session, lines: Iterable[str]) -> int:
    """Run every line; return the exit code."""
    run_lines(session, iter(lines))
    return session_exit_code(session)


def text_emitter(out: TextIO | None = None, err: TextIO | None = None) -> Callable[[Output], None]:
    """An emit callback printing the transcript as it happens (errors to stderr)."""

    def emit(item: Output) -> None:
        # Errors stay in the transcript on stdout; the one stderr line comes at the end.
        print(format_output(item), file=out or sys.stdout, flush=True)

    return emit
