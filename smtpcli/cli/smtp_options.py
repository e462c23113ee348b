"""Option decorators shared by the commands that talk SMTP (send, bench, probe, session).

One definition per concept, so the same option has the same name, short flag, metavar, help
and parameter name everywhere. Passwords go through ``smtpcli.cli.secrets.resolve_password``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

TLS_MODES = ("starttls", "implicit", "none", "opportunistic")
CAFILE_HELP = "Trust this CA bundle (PEM) besides the system store."
TLS_DEFAULT_HELP = "default by port: 465 implicit, 587 starttls, else opportunistic"


def tls_option(default_help: str = TLS_DEFAULT_HELP) -> Callable[[F], F]:
    """``--tls MODE``: how TLS starts (RFC 3207 STARTTLS or RFC 8314 implicit TLS)."""
    return click.option(
        "--tls", "tls_mode", type=click.Choice(TLS_MODES, case_sensitive=False),
        metavar="MODE", help=f"TLS mode: {', '.join(TLS_MODES)} ({default_help}).",
    )


def cafile_option(f: F) -> F:
    """``--cafile FILE``: an extra trust anchor (tests, private CAs)."""
    return click.option(
        "--cafile", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
        help=CAFILE_HELP,
    )(f)


def insecure_option(f: F) -> F:
    """``--insecure``: connect even when the certificate does not verify."""
    return click.option(
        "--insecure", is_flag=True,
        help="Do not verify the server certificate (a warning says so on stderr).",
    )(f)


def warn_insecure() -> None:
    """The one loud line for ``--insecure``, the same for every command."""
    click.echo("smtpcli: WARNING: --insecure: the server certificate is NOT verified", err=True)


def sni_option(f: F) -> F:
    """``--sni NAME``: the TLS server name, also the name the certificate must match."""
    return click.option(
        "--sni", metavar="NAME",
        help="TLS server name (SNI) and the name to verify (default: the host).",
    )(f)


def ehlo_option(default: str | None = None, default_help: str | None = None
                ) -> Callable[[F], F]:
    """``--ehlo NAME``: the name this client gives in EHLO (RFC 5321 4.1.1.1)."""
    suffix = f" (default: {default_help})" if default_help else ""
    return click.option(
        "--ehlo", "ehlo_name", metavar="NAME", default=default, show_default=default is not None,
        help=f"Name to send with EHLO{suffix}.",
    )


def password_options(f: F) -> F:
    """``--password-file FILE`` and ``--password TEXT`` (see smtpcli.cli.secrets)."""
    f = click.option(
        "--password", metavar="TEXT",
        help="AUTH password (visible in `ps`; prefer --password-file or SMTPCLI_PASSWORD).",
    )(f)
    f = click.option(
        "--password-file", type=click.Path(dir_okay=False), metavar="FILE",
        help="Read the AUTH password from the first line of FILE.",
    )(f)
    return f


def auth_options(mechanisms: Sequence[str] | None = None, default: str | None = None,
                 default_help: str = "") -> Callable[[F], F]:
    """``-u/--user``, ``--auth MECH`` and the password options."""
    def deco(f: F) -> F:
        f = password_options(f)
        kind: Any = click.Choice(list(mechanisms), case_sensitive=False) if mechanisms else None
        listed = ", ".join(mechanisms) if mechanisms else \
            "auto, PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER"
        f = click.option(
            "--auth", "auth_mech", type=kind, metavar="MECH", default=default,
            show_default=default is not None,
            help=f"AUTH mechanism: {listed}{default_help}.",
        )(f)
        f = click.option("-u", "--user", metavar="NAME", help="AUTH user name.")(f)
        return f
    return deco


def port_option(help_: str) -> Callable[[F], F]:
    """``-p/--port PORT``."""
    return click.option("-p", "--port", type=click.IntRange(1, 65535), metavar="PORT", help=help_)
