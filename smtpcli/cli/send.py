"""``smtpcli send``: send a test message (thin: options -> smtp.delivery -> Report -> finish)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from smtpcli.cli.options import dns_options, finish, json_option, timeout_option
from smtpcli.cli.secrets import resolve_password
from smtpcli.cli.smtp_options import (
    auth_options,
    cafile_option,
    ehlo_option,
    insecure_option,
    port_option,
    sni_option,
    tls_option,
    warn_insecure,
)
from smtpcli.errors import SmtpReplyError, UsageError
from smtpcli.results import Report

if TYPE_CHECKING:
    from smtpcli.render.style import Painter

QUIT_STAGES = ("connect", "banner", "ehlo", "tls", "auth", "mail", "rcpt")


def _read_text(value: str, what: str) -> str:
    """``TEXT``, ``@FILE`` or ``-`` (stdin)."""
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        try:
            with open(value[1:], encoding="utf-8") as fh:
                return fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {what} file {value[1:]}: {exc}") from None
    return value


def _live_printer() -> Any:
    """-v: every transcript event on stderr as it happens."""
    from smtpcli.render.style import Painter

    paint = Painter.for_stream(sys.stderr)
    marks = {"sent": ("> ", "sent"), "recv": ("< ", "received"), "tls": ("~ ", "info"),
             "info": ("* ", "dim")}

    def show(event: Any) -> None:
        mark, style = marks[event.dir]
        sys.stderr.write(paint(f"{event.t:8.1f}ms {event.stage:<8} {mark}{event.line}", style) + "\n")
        sys.stderr.flush()

    return show


def _facts_lines(report: Report, paint: Painter) -> list[str]:
    f = report.facts
    out: list[str] = []

    def row(label: str, text: str) -> None:
        out.append(f"{paint(f'{label:<10}', 'dim')} {text}")

    if f.get("target"):
        t = f["target"]
        row("server", f"{report.target} ({t['tls']})")
    if f.get("banner"):
        row("banner", f"{f['banner']['code']} {f['banner']['text'].splitlines()[0] if f['banner']['text'] else ''}")
    if f.get("tls"):
        tls = f["tls"]
        leaf = tls["chain"][0]["subject"] if tls.get("chain") else "?"
        state = "verified" if tls.get("verified") else f"NOT verified: {tls.get('verify_error')}"
        row("tls", f"{tls['protocol']} {tls['cipher']}, certificate {leaf} ({state})")
    if f.get("auth"):
        row("auth", f"{f['auth']['mechanism']}")
    for r in f.get("recipients") or []:
        reply = r["reply"]
        line = f"<{r['address']}> {reply['code']} {' '.join(reply['text'].split())}"
        row("rcpt", paint(line, "ok" if r["accepted"] else "fail"))
    if f.get("queue_id"):
        row("queue id", f["queue_id"])
    if f.get("message"):
        m = f["message"]
        row("message", f"{m['size']} bytes, {m.get('message_id') or 'no Message-ID'}")
    if f.get("timings"):
        tm = f["timings"]
        parts = ", ".join(f"{k} {v:g}" for k, v in tm.items() if k != "total")
        row("time", f"{tm['total']:g} ms ({parts})")
    return out


@click.command("send")
@click.option("-s", "--server", metavar="TARGET",
              help="host[:port], [v6]:port, smtp://, smtps://, submission://. "
                   "Without it: straight to the recipient domain's MX hosts.")
@port_option("Port (overrides the one in --server).")
@tls_option()
@click.option("-4", "family", flag_value=4, help="IPv4 only.")
@click.option("-6", "family", flag_value=6, help="IPv6 only.")
@click.option("--bind", "source_address", metavar="ADDR", help="Local address to connect from.")
@ehlo_option(default_help="this machine's FQDN, or [address]")
@cafile_option
@insecure_option
@click.option("--tls-verify", is_flag=True,
              help="Straight to the MX: a certificate that does not verify is a failure "
                   "(default there: opportunistic TLS, a warning).")
@sni_option
@click.option("--tls-min-version", type=click.Choice(["1.0", "1.1", "1.2", "1.3"]),
              help="Refuse TLS versions below this one.")
@click.option("--client-cert", type=click.Path(dir_okay=False), metavar="FILE",
              help="Client certificate (PEM).")
@click.option("--client-key", type=click.Path(dir_okay=False), metavar="FILE",
              help="Its key, if separate.")
@auth_options(default_help=" (default: auto when --user is given)")
@click.option("--oauth-token-file", type=click.Path(dir_okay=False), help="Bearer token file.")
@click.option("--oauth-token-cmd", metavar="CMD", help="Command printing a bearer token.")
@click.option("--show-secrets", is_flag=True, help="Show AUTH exchanges in the transcript.")
@click.option("-f", "--from", "from_", metavar="ADDR", help="From header (and envelope sender).")
@click.option("--mail-from", metavar="ADDR", help="Envelope sender if not --from ('' for <>).")
@click.option("-t", "--to", multiple=True, metavar="ADDR", help="Recipient (repeatable).")
@click.option("--cc", multiple=True, metavar="ADDR", help="Cc recipient (repeatable).")
@click.option("--bcc", multiple=True, metavar="ADDR", help="Bcc: envelope only (repeatable).")
@click.option("-H", "--header", "headers", multiple=True, metavar="'NAME: VALUE'",
              help="Add or replace a header (repeatable).")
@click.option("--subject", help="Subject (default: 'smtpcli test DATE').")
@click.option("--body", metavar="TEXT|@FILE|-", help="Plain-text body.")
@click.option("--html", metavar="TEXT|@FILE|-", help="HTML body (alternative to the text).")
@click.option("--attach", multiple=True, type=click.Path(dir_okay=False), help="Attach a file.")
@click.option("--inline", multiple=True, type=click.Path(dir_okay=False),
              help="Inline image, referenced in HTML as cid:FILENAME.")
@click.option("--charset", default="utf-8", show_default=True, help="Charset for non-ASCII text.")
@click.option("--8bit", "eight_bit", is_flag=True, help="Send non-ASCII text as 8bit (BODY=8BITMIME).")
@click.option("--data", "data_file", metavar="FILE|-", help="Send this ready message instead.")
@click.option("--dkim-key", type=click.Path(dir_okay=False), help="DKIM-sign with this key.")
@click.option("--dkim-selector", metavar="S", help="DKIM selector.")
@click.option("--dkim-domain", metavar="D", help="DKIM d= (default: the From domain).")
@click.option("--pipelining/--no-pipelining", default=True, show_default=True,
              help="Use PIPELINING when advertised.")
@click.option("--bdat", is_flag=True, help="Send with BDAT (CHUNKING) instead of DATA.")
@click.option("--chunk-size", type=click.IntRange(0), default=0, help="BDAT chunk size (0: one).")
@click.option("--dsn-notify", metavar="LIST", help="NEVER or SUCCESS,FAILURE,DELAY (RFC 3461).")
@click.option("--dsn-ret", type=click.Choice(["FULL", "HDRS"], case_sensitive=False),
              help="DSN: return the full message or only its headers (RFC 3461 4.3).")
@click.option("--envid", metavar="ID", help="DSN envelope id.")
@click.option("--requiretls", is_flag=True, help="MAIL FROM ... REQUIRETLS (RFC 8689).")
@click.option("--mail-param", multiple=True, metavar="KEY[=VAL]", help="Extra MAIL FROM parameter.")
@click.option("--rcpt-param", multiple=True, metavar="KEY[=VAL]", help="Extra RCPT TO parameter.")
@click.option("--quit-after", type=click.Choice(QUIT_STAGES), help="Stop cleanly after STAGE.")
@click.option("--dry-run", is_flag=True, help="Print envelope and message; send nothing.")
@click.option("--allow-partial", is_flag=True, help="Exit 0 when some recipients were rejected.")
@click.option("-v", "--verbose", is_flag=True, help="Stream the transcript to stderr live.")
@timeout_option(10.0)
@dns_options
@json_option
@click.pass_context
def command(ctx: click.Context, **o: Any) -> int:
    """Send a test message (TLS, AUTH, MIME, DKIM, live transcript).

    Sends to --server, or without it straight to the recipient domain's MX hosts, and reports
    every step; -v streams the SMTP dialogue to stderr as it happens.

    \b
    Examples:
      smtpcli send -s mail.example.com:587 -u me --password-file pw \\
          -f me@example.com -t you@example.net
      smtpcli send -f me@example.com -t you@example.net     # straight to the MX
      smtpcli send -s 127.0.0.1:2525 --quit-after rcpt -f a@x.test -t b@x.test
    """
    from smtpcli.smtp import sendplan

    plan = sendplan.build_plan(sendplan.SendArgs(**{
        k: v for k, v in o.items() if k not in ("json_mode", "verbose")
    }), read_text=_read_text)
    if o["insecure"]:
        warn_insecure()
    if plan.credentials is not None and plan.credentials.password is None and \
            plan.credentials.token is None:
        plan = sendplan.with_password(plan, resolve_password(ctx, plan.credentials.user, o["password"],
                                                      o["password_file"]))
    if o["dry_run"]:
        return _dry_run(plan, o["json_mode"])
    listener = _live_printer() if o["verbose"] else None
    report, error = sendplan.execute(plan, listener=listener)
    if error is not None and not isinstance(error, SmtpReplyError) and not o["json_mode"]:
        raise error  # one clear line on stderr (the -v transcript is already out)
    if error is not None and o["json_mode"]:
        click.echo(f"smtpcli: {error.one_line()}", err=True)
    return finish(report, json_mode=o["json_mode"], facts_renderer=_facts_lines)


def _dry_run(plan: Any, json_mode: bool) -> int:
    report = Report(command="send", target=plan.target_text, summary="dry run: nothing sent")
    report.facts = plan.dry_run_facts()
    if json_mode:
        return finish(report, json_mode=True)
    env = report.facts["envelope"]
    click.echo(f"MAIL FROM:<{env['mail_from']}>")
    for rcpt in env["recipients"]:
        click.echo(f"RCPT TO:<{rcpt}>")
    click.echo("")
    sys.stdout.flush()
    sys.stdout.buffer.write(plan.content or b"")
    sys.stdout.buffer.flush()
    return 0
