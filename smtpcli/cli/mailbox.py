"""``smtpcli mailbox``: ask a running ``serve --http`` what it received (for shell CI)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from smtpcli.cli.options import finish, json_option
from smtpcli.results import Report, Status

if TYPE_CHECKING:
    from smtpcli.render.style import Painter
    from smtpcli.server.api_client import MailboxClient

F = TypeVar("F", bound=Callable[..., Any])
QUERY_HELP = ("Mailpit search: to:ADDR from:ADDR subject:TEXT is:unread has:attachment, bare "
              "words, -term to negate.")


def http_option(f: F) -> F:
    return click.option(
        "--http", "url", default="http://127.0.0.1:8025", show_default=True,
        envvar="SMTPCLI_HTTP", metavar="URL", help="The serve --http (or Mailpit) address.",
    )(f)


def _client(url: str) -> MailboxClient:
    from smtpcli.server.api_client import MailboxClient

    return MailboxClient(url)


@click.group("mailbox")
def command() -> None:
    """Read what serve --http captured: list, show, wait, clear.

    Works against a running `smtpcli serve --http` (or, except wait, Mailpit).

    \b
    Examples:
      smtpcli serve --http &
      smtpcli mailbox wait 'to:bob@example.test subject:Welcome' --timeout 10
      smtpcli mailbox list --json
      smtpcli mailbox show latest
      smtpcli mailbox clear
    """


def _addr(a: dict[str, str] | None) -> str:
    if not a:
        return ""
    return f"{a['Name']} <{a['Address']}>" if a.get("Name") else a.get("Address", "")


def _list_lines(report: Report, paint: Painter) -> Iterable[str]:
    for m in report.facts["messages"]:
        to = ", ".join(_addr(a) for a in m["To"]) or "-"
        mark = " " if m["Read"] else paint("*", "bold")
        yield (f"{mark} {m['Created'][:19].replace('T', ' ')}  {m['ID']}  "
               f"{_addr(m['From'])} -> {to}  {paint(m['Subject'] or '(no subject)', 'bold')}")


@command.command("list")
@click.argument("query", required=False)
@click.option("--limit", type=click.IntRange(1, 100000), default=50, show_default=True,
              help="Show at most this many (newest first).")
@http_option
@json_option
def list_cmd(query: str | None, limit: int, url: str, json_mode: bool) -> int:
    """List captured messages, newest first (unread ones marked *).

    \b
    Examples:
      smtpcli mailbox list
      smtpcli mailbox list 'to:bob@example.test is:unread' --json
    """
    result = _client(url).messages(query, limit)
    report = Report(command="mailbox list", target=url)
    shown, matched = len(result["messages"]), result["messages_count"]
    report.summary = (f"{matched} message{'s' if matched != 1 else ''}"
                      f"{' matching ' + repr(query) if query else ''}"
                      f" ({result['total']} in the mailbox, {result['unread']} unread)"
                      + (f"; showing the newest {shown}" if shown < matched else ""))
    report.facts = {k: result[k] for k in ("total", "unread", "messages_count", "messages")}
    return finish(report, json_mode=json_mode, facts_renderer=_list_lines)


def _message_lines(report: Report, paint: Painter) -> Iterable[str]:
    m = report.facts["message"]
    env = m.get("Envelope") or {}
    rows = [("From", _addr(m["From"])), ("To", ", ".join(_addr(a) for a in m["To"])),
            ("Cc", ", ".join(_addr(a) for a in m["Cc"])), ("Subject", m["Subject"]),
            ("Date", m["Date"]), ("Message-ID", m["MessageID"])]
    if env:
        rows += [("MAIL FROM", f"<{env['mail_from']}>"),
                 ("RCPT TO", " ".join(f"<{r}>" for r in env["rcpt_tos"])),
                 ("TLS", (env.get("tls") or {}).get("version") or "no"),
                 ("AUTH", (env.get("auth") or {}).get("user") or "no")]
    for label, value in rows:
        if value:
            yield f"{paint(f'{label}:', 'bold')} {value}"
    for a in m["Attachments"]:
        yield f"{paint('Attachment:', 'bold')} {a['FileName']} ({a['ContentType']}, {a['Size']} bytes, part {a['PartID']})"
    yield ""
    body = m["Text"] or m["HTML"]
    yield from body.rstrip().splitlines()


@command.command("show")
@click.argument("msg_id", metavar="ID", default="latest")
@click.option("--raw", is_flag=True, help="Write the message source exactly as stored.")
@http_option
@json_option
def show_cmd(msg_id: str, raw: bool, url: str, json_mode: bool) -> int:
    """Show one message (ID, or `latest`): headers, SMTP envelope, TLS/AUTH, body.

    \b
    Examples:
      smtpcli mailbox show latest
      smtpcli mailbox show 6b142a274e23.2 --raw > message.eml
    """
    client = _client(url)
    if raw:
        sys.stdout.buffer.write(client.raw(msg_id))
        sys.stdout.flush()
        return 0
    msg = client.message(msg_id)
    report = Report(command="mailbox show", target=url)
    report.summary = f"message {msg['ID']}: {msg['Subject'] or '(no subject)'}"
    report.facts = {"message": msg}
    return finish(report, json_mode=json_mode, facts_renderer=_message_lines)


@command.command("wait")
@click.argument("query", required=False)
@click.option("--timeout", type=click.FloatRange(0, 300), default=30.0, show_default=True,
              metavar="SECONDS", help="Give up (exit 1) after this long.")
@click.option("--count", type=click.IntRange(1), default=1, show_default=True,
              help="Wait until this many messages match (those already there count).")
@http_option
@json_option
def wait_cmd(query: str | None, timeout: float, count: int, url: str, json_mode: bool) -> int:
    """Wait until a message matching QUERY is there (exit 1 on timeout).

    QUERY uses the search filters: to:, from:, subject:, is:unread, has:attachment, words.

    \b
    Examples:
      smtpcli mailbox wait 'to:bob@example.test subject:Welcome' --timeout 10
      smtpcli mailbox wait 'from:shop.test' --count 3 --json
    """
    from smtpcli.server.api_client import WaitTimeout

    report = Report(command="mailbox wait", target=url)
    what = f"matching {query!r}" if query else "at all"
    try:
        msg, matched = _client(url).wait(query, timeout, count)
    except WaitTimeout as exc:
        report.add("mailbox.wait", Status.FAIL, f"no message {what} in time: {exc}",
                   data={"query": query, "timeout_s": timeout, "count": count})
        report.summary = f"timed out after {timeout:g} s waiting for {count} message(s) {what}"
        return finish(report, json_mode=json_mode)
    report.add("mailbox.wait", Status.OK, f"{matched} message(s) {what}",
               data={"query": query, "matched": matched})
    report.summary = f"message {msg['ID']} arrived: {msg['Subject'] or '(no subject)'}"
    report.facts = {"message": msg}
    return finish(report, json_mode=json_mode, facts_renderer=_message_lines, show_ok=False)


@command.command("clear")
@click.argument("query", required=False)
@http_option
@json_option
def clear_cmd(query: str | None, url: str, json_mode: bool) -> int:
    """Delete every captured message (or those matching QUERY).

    \b
    Examples:
      smtpcli mailbox clear
      smtpcli mailbox clear 'subject:test run 41'
    """
    gone = _client(url).clear(query)
    report = Report(command="mailbox clear", target=url)
    report.summary = f"deleted {gone} message{'s' if gone != 1 else ''}"
    report.facts = {"deleted": gone}
    return finish(report, json_mode=json_mode)
