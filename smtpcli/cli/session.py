"""``smtpcli session [TARGET]``: interactive SMTP session, or scripted from stdin."""

from __future__ import annotations

import sys

import click

from smtpcli.cli.options import json_option, timeout_option
from smtpcli.cli.secrets import password_without_prompt
from smtpcli.cli.smtp_options import cafile_option, ehlo_option, password_options, tls_option


@click.command("session")
@click.argument("target", required=False)
@tls_option("default by port: 465 implicit, otherwise plain until .starttls")
@cafile_option
@ehlo_option(default_help="this machine's FQDN")
@password_options
@click.option("--no-history", is_flag=True, help="Do not read or write the history file.")
@click.option("--show-secrets", is_flag=True, help="Show AUTH exchanges in the transcript.")
@timeout_option(30.0, "each network step")
@json_option
def command(
    target: str | None, tls_mode: str | None, cafile: str | None, ehlo_name: str | None,
    password_file: str | None, password: str | None, no_history: bool, show_secrets: bool, timeout: float,
    json_mode: bool,
) -> int:
    """Interactive SMTP session with completion and helpers.

    Raw SMTP commands as typed, plus .special helpers (.starttls, .auth, .data; .help lists
    them).

    With stdin not a terminal, reads the same lines from it and prints the transcript
    (--json: as JSON); the exit code follows the last reply (0, 4 or 5; 3 when the connection
    failed).

    \b
    Examples:
      smtpcli session mx.example.org
      smtpcli session 127.0.0.1:2525 --tls none < dialogue.txt
      printf 'EHLO me\\n.starttls\\n.auth PLAIN alice\\nQUIT\\n' \\
          | smtpcli session host:587 --password-file pw
    """
    from smtpcli.session.engine import Output, Session
    from smtpcli.session.scripted import run_scripted, session_report, text_emitter
    from smtpcli.smtp.connection import ConnectOptions
    from smtpcli.smtp.target import parse_target
    from smtpcli.smtp.tlsinfo import TlsOptions

    parsed = parse_target(target, tls=tls_mode) if target else None
    # Verification is reported, not enforced: a hands-on session wants to see a bad certificate.
    options = ConnectOptions(
        timeout=timeout, ehlo_name=ehlo_name, show_secrets=show_secrets,
        tls=TlsOptions(verify=False, cafile=cafile,
                       unverified_because="session shows the certificate, never refuses it"),
    )

    ctx = click.get_current_context()

    def scripted_secret(prompt: str) -> str | None:
        # .auth asks for it; None lets the REPL prompt (or the script fail with a clear line).
        return password_without_prompt(ctx, password, password_file)

    from smtpcli.session.explain import explain_reply

    interactive = sys.stdin.isatty() and not json_mode
    collected: list[Output] = []
    emit = collected.append if json_mode else text_emitter()
    lines = iter(sys.stdin)

    def next_line(prompt: str) -> str | None:
        return next(lines, None)

    session = Session(
        parsed, options, emit=emit, read_line=next_line, read_secret=scripted_secret,
        explain=explain_reply,
    )
    if interactive:
        from smtpcli.session.history import history_path
        from smtpcli.session.repl import run_repl

        if parsed is not None:
            session.connect()
        return run_repl(session, history=None if no_history else history_path())
    if parsed is not None:
        session.connect()
    code = run_scripted(session, lines)
    if json_mode:
        from smtpcli.render.json_out import render_json

        render_json(session_report(session, code))
    from smtpcli.session.scripted import failure_line

    failed = failure_line(session, code)
    if failed:
        click.echo(f"smtpcli: {failed}", err=True)  # the transcript is on stdout; one line here
    return code
