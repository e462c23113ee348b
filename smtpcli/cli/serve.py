"""``smtpcli serve``: a capture SMTP server for tests and CI, with scripted faults."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from smtpcli.cli.options import json_option
from smtpcli.results import Report, Status

if TYPE_CHECKING:
    from smtpcli.server.config import ServeConfig
    from smtpcli.server.runner import CaptureServer
    from smtpcli.server.state import EventSink

STAGES_HELP = "connect, helo, ehlo, starttls, auth, mail, rcpt, data, dot, rset, noop, vrfy, quit"


def _event_line(ev: dict[str, Any]) -> str | None:
    """One human line per event (None: not shown in text mode)."""
    kind = ev["event"]
    conn = f"[{ev['conn']}] " if ev.get("conn") is not None else ""
    if kind == "listening":
        parts = []
        if ev.get("tls"):
            parts.append("implicit TLS" if ev["tls"] == "implicit" else "STARTTLS")
            if ev.get("require_starttls"):
                parts[-1] += " required"
        if ev.get("auth"):
            parts.append(f"AUTH ({ev['auth']})")
        parts.append("storage: " + ", ".join(ev["storage"]))
        if ev.get("hidden"):
            parts.append("hidden: " + " ".join(ev["hidden"]))
        line = f"listening on {ev['address']} ({'; '.join(parts)})"
        if ev.get("http"):
            line += f"\nHTTP API (Mailpit v1) and web inbox on {ev['http']}"
        cert = ev.get("certificate")
        if cert:
            kind_text = "self-signed " if cert["self_signed"] else ""
            line += f"\ncertificate {kind_text}{cert['subject']} sha256 {cert['sha256']}"
        return line
    if kind == "connect":
        return f"{conn}connect from {ev['peer']}"
    if kind == "disconnect":
        return f"{conn}disconnect"
    if kind == "auth":
        return f"{conn}AUTH {ev['mechanism']} user={ev['user']} {'ok' if ev['success'] else 'failed'}"
    if kind == "fault":
        what = {"delay": f"delay {ev.get('ms')} ms", "drop": "drop connection"}.get(
            ev["action"], f"{ev['action']} {ev.get('reply', '')}".strip()
        )
        return f"{conn}fault at {ev['stage']}: {what}"
    if kind == "message":
        facts = [f"{ev['size']} bytes"]
        if ev.get("tls"):
            facts.append(ev["tls"]["version"])
        if ev.get("auth"):
            facts.append(f"auth={ev['auth']['user']}")
        rcpts = ", ".join(f"<{r}>" for r in ev["rcpt_tos"])
        stored = ", ".join(ev.get("stored", []))
        return (f"{conn}message {ev['seq']} from <{ev['mail_from']}> to {rcpts} "
                f"({'; '.join(facts)}) -> {stored}")
    if kind == "error":
        return f"{conn}error ({ev.get('where')}): {ev.get('message')}"
    return None


def _printer(json_mode: bool) -> EventSink:
    if json_mode:
        from smtpcli.render.json_out import render_json_line

        return render_json_line

    def show(ev: dict[str, Any]) -> None:
        line = _event_line(ev)
        if line is not None:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    return show


def _report(server: CaptureServer, expect: int | None) -> Report:
    summary = server.summary
    report = Report(command="serve", target=f"{server.host}:{server.port}")
    got = summary.messages
    report.summary = (
        f"{got} message{'s' if got != 1 else ''} accepted on {summary.connections} "
        f"connection{'s' if summary.connections != 1 else ''}, stopped by {summary.reason}"
    )
    if expect is not None:
        if got == expect:
            report.add("serve.expect", Status.OK, f"{got} of {expect} expected messages arrived",
                       data={"expected": expect, "received": got})
        else:
            report.add(
                "serve.expect", Status.FAIL,
                f"expected exactly {expect} message{'s' if expect != 1 else ''}, got {got}",
                data={"expected": expect, "received": got},
            )
    if summary.errors:
        report.add("serve.errors", Status.WARN, f"{summary.errors} server-side errors (see events)")
    report.facts = {"summary": summary.to_dict(), "listening": server.listening_facts()}
    return report


@click.command("serve")
@click.option("--listen", default="127.0.0.1:2525", show_default=True, metavar="HOST:PORT",
              help="Address to listen on (port 0 picks a free port).")
@click.option("--public", is_flag=True, help="Allow a non-loopback --listen or --http address.")
@click.option("--http", "http", is_flag=False, flag_value="127.0.0.1:8025", default=None,
              metavar="[HOST:]PORT",
              help="Also serve a Mailpit-compatible HTTP API and a web inbox "
                   "(alone: 127.0.0.1:8025).")
@click.option("--hostname", default="smtpcli.test", show_default=True,
              help="Name in the greeting and EHLO reply (and the self-signed certificate).")
@click.option("--tls-cert", type=click.Path(dir_okay=False), metavar="PEM",
              help="Certificate chain for STARTTLS / implicit TLS.")
@click.option("--tls-key", type=click.Path(dir_okay=False), metavar="PEM",
              help="Private key for --tls-cert (if not in the same file).")
@click.option("--tls-self-signed", is_flag=True,
              help="Make a throwaway self-signed certificate (prints its SHA-256 fingerprint).")
@click.option("--implicit-tls", is_flag=True, help="TLS from the first byte (port 465 style).")
@click.option("--require-starttls", is_flag=True,
              help="Refuse MAIL before STARTTLS (530, RFC 3207 4).")
@click.option("--auth-users", type=click.Path(dir_okay=False), metavar="FILE",
              help="Offer AUTH PLAIN/LOGIN; FILE holds user:password lines.")
@click.option("--auth-accept-any", is_flag=True, help="Offer AUTH and accept any credentials.")
@click.option("--auth-required", is_flag=True, help="Refuse MAIL before AUTH (530).")
@click.option("--auth-plaintext", is_flag=True,
              help="Offer AUTH before STARTTLS too (default: only after it, when TLS is on).")
@click.option("--max-size", type=click.IntRange(0), default=33554432, show_default=True,
              metavar="BYTES", help="Largest message (SIZE extension); 0 = no limit.")
@click.option("--no-smtputf8", is_flag=True, help="Do not offer SMTPUTF8.")
@click.option("--no-pipelining", is_flag=True, help="Do not advertise PIPELINING.")
@click.option("--no-8bitmime", is_flag=True, help="Do not advertise 8BITMIME; refuse BODY=8BITMIME.")
@click.option("--hide", multiple=True, metavar="EXT",
              help="Hide an EHLO extension: PIPELINING 8BITMIME SMTPUTF8 SIZE STARTTLS AUTH HELP.")
@click.option("--maildir", type=click.Path(file_okay=False), metavar="DIR",
              help="Store each message as a file in this Maildir.")
@click.option("--mbox", type=click.Path(dir_okay=False), metavar="FILE",
              help="Append messages to this mbox (mboxrd).")
@click.option("--jsonl", type=click.Path(dir_okay=False), metavar="FILE",
              help="Append envelope, headers, size, TLS and AUTH facts per message as JSON Lines.")
@click.option("--no-fsync", is_flag=True,
              help="Skip fsync (messages still reach the OS before 250; faster, not crash-safe).")
@click.option("--no-received", is_flag=True,
              help="Store messages exactly as sent, without serve's Received: header.")
@click.option("--reply", "replies", multiple=True, metavar="STAGE:CODE [TEXT][:COND]",
              help=f"Answer CODE TEXT at STAGE ({STAGES_HELP}); COND is PCT or "
                   "from|to|helo|user|peer=GLOB or nth=N / first=N. Repeatable.")
@click.option("--delay", "delays", multiple=True, metavar="STAGE:MS[:COND]",
              help="Wait MS milliseconds before replying at STAGE. Repeatable.")
@click.option("--drop", "drops", multiple=True, metavar="STAGE[:COND]",
              help="Close the connection at STAGE instead of replying. Repeatable.")
@click.option("--greylist", type=click.FloatRange(0), metavar="SECONDS",
              help="451 the first RCPT of each (IP, sender, recipient) until SECONDS have passed.")
@click.option("--tarpit", is_flag=True, help="Dribble every reply out slowly (see --tarpit-delay).")
@click.option("--tarpit-delay", type=click.IntRange(0), default=1000, show_default=True,
              metavar="MS", help="How long each reply takes with --tarpit.")
@click.option("--seed", type=int, help="Random seed for percentage faults (reproducible runs).")
@click.option("--count", type=click.IntRange(0), metavar="N", help="Exit after N messages.")
@click.option("--exit-after", type=click.FloatRange(0), metavar="SECONDS",
              help="Exit after SECONDS.")
@click.option("--expect", type=click.IntRange(0), metavar="N",
              help="Exit 0 only if exactly N messages arrived (else 1).")
@click.option("--grace", type=click.FloatRange(0), default=5.0, show_default=True,
              metavar="SECONDS", help="On shutdown, wait this long for transfers in progress.")
@json_option
def command(
    listen: str, public: bool, http: str | None, hostname: str, tls_cert: str | None, tls_key: str | None,
    tls_self_signed: bool, implicit_tls: bool, require_starttls: bool, auth_users: str | None,
    auth_accept_any: bool, auth_required: bool, auth_plaintext: bool, max_size: int,
    no_smtputf8: bool, no_pipelining: bool, no_8bitmime: bool, hide: tuple[str, ...],
    maildir: str | None, mbox: str | None, jsonl: str | None, no_fsync: bool,
    no_received: bool,
    replies: tuple[str, ...], delays: tuple[str, ...], drops: tuple[str, ...],
    greylist: float | None, tarpit: bool, tarpit_delay: int, seed: int | None,
    count: int | None, exit_after: float | None, expect: int | None, grace: float,
    json_mode: bool,
) -> int:
    """Capture SMTP server for tests and CI, with scripted faults.

    Listens on loopback (127.0.0.1:2525) unless --public; prints one line (or, with --json, one
    JSON document) per event. Stops on SIGTERM, --count or --exit-after, after every accepted
    message is on disk; Ctrl-C (SIGINT) stops the same way and exits 130.

    \b
    Examples:
      smtpcli serve --maildir ./mail --count 1 --expect 1
      smtpcli serve --tls-self-signed --auth-users users.txt \\
          --listen 127.0.0.1:2587
      smtpcli serve --reply 'rcpt:550 5.1.1 No such user:to=bad@*' --greylist 5
      smtpcli serve --http    # API and inbox on http://127.0.0.1:8025/
    """
    from smtpcli.server.config import ServeConfig, parse_listen, read_users_file
    from smtpcli.server.faults import parse_delay, parse_drop, parse_reply

    host, port = parse_listen(listen)
    http_host, http_port = parse_listen(http, "--http") if http is not None else ("", None)
    hidden = {h.upper() for h in hide}
    if no_pipelining:
        hidden.add("PIPELINING")
    if no_8bitmime:
        hidden.add("8BITMIME")
    config = ServeConfig(
        host=host, port=port, public=public, hostname=hostname,
        tls_cert=tls_cert, tls_key=tls_key, tls_self_signed=tls_self_signed,
        implicit_tls=implicit_tls, require_starttls=require_starttls,
        auth_users=read_users_file(auth_users) if auth_users else {},
        auth_accept_any=auth_accept_any, auth_required=auth_required,
        auth_plaintext=auth_plaintext, max_size=max_size, smtputf8=not no_smtputf8,
        hide=hidden, maildir=maildir, mbox=mbox, jsonl=jsonl, fsync=not no_fsync,
        received=not no_received,
        replies=[parse_reply(r) for r in replies], delays=[parse_delay(d) for d in delays],
        drops=[parse_drop(d) for d in drops], greylist=greylist, tarpit=tarpit,
        tarpit_delay_ms=tarpit_delay, seed=seed, count=count, exit_after=exit_after,
        expect=expect, grace=grace, http_host=http_host or "127.0.0.1", http_port=http_port,
    )
    config.validate()
    server = _run(config, _printer(json_mode))
    report = _report(server, expect)
    interrupted = server.summary.reason == "signal SIGINT"
    if interrupted:
        # Ctrl-C: a clean shutdown (every accepted message on disk), then the exit code every
        # command gives an interruption; SIGTERM stays the ordinary way to stop (exit by result).
        from smtpcli.interrupt import EXIT_CODE

        report.exit_code = EXIT_CODE
    code = _finish(report, json_mode)
    if interrupted:
        from smtpcli.interrupt import say_interrupted

        say_interrupted()
    return code


def _run(config: ServeConfig, on_event: EventSink) -> CaptureServer:
    import asyncio
    import signal

    from smtpcli.server.runner import CaptureServer

    server = CaptureServer(config, on_event)

    async def main() -> None:
        await server.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            # A signal is the normal way to stop a server: shut down cleanly, no traceback.
            loop.add_signal_handler(sig, server.stop, f"signal {signal.Signals(sig).name}")
        await server.wait()

    asyncio.run(main())
    return server


def _finish(report: Report, json_mode: bool) -> int:
    from smtpcli.results import exit_code_for_status

    code = int(exit_code_for_status(report))
    report.exit_code = code
    if json_mode:
        # serve streams JSON Lines: the closing report is one more line.
        from smtpcli.render.json_out import render_json_line

        render_json_line({"event": "shutdown", **report.to_dict()})
    else:
        from smtpcli.render.text import render_text

        render_text(report)
    return code
