"""Where an AUTH password comes from, the same for every command (DESIGN.md "Secrets").

Order: ``--password-file``, ``--password`` (with a warning: visible in ``ps``),
``SMTPCLI_PASSWORD``, then a prompt, but only on a terminal.
"""

from __future__ import annotations

import os
import sys

import click

from smtpcli.errors import UsageError


def password_without_prompt(
    ctx: click.Context, password: str | None, password_file: str | None
) -> str | None:
    """The password from ``--password-file``, ``--password`` or ``SMTPCLI_PASSWORD``, else None."""
    from smtpcli.smtp.auth import read_secret_file

    if password_file:
        return read_secret_file(password_file, "password")
    if password is not None:
        if ctx.get_parameter_source("password") is click.core.ParameterSource.COMMANDLINE:
            click.echo("smtpcli: warning: --password is visible to other users in `ps`; "
                       "prefer --password-file or SMTPCLI_PASSWORD", err=True)
        return password
    return os.environ.get("SMTPCLI_PASSWORD") or None


def resolve_password(
    ctx: click.Context, user: str, password: str | None, password_file: str | None
) -> str:
    """The password for ``user``; never echoed, never logged."""
    found = password_without_prompt(ctx, password, password_file)
    if found is not None:
        return found
    if not sys.stdin.isatty():
        raise UsageError(f"no password for {user!r}: use --password-file or SMTPCLI_PASSWORD "
                         "(no prompt: stdin is not a terminal)")
    value: str = click.prompt(f"Password for {user}", hide_input=True, err=True)
    return value
