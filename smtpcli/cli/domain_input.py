"""check-domain's input, one name at a time: what is clearly a domain is checked (with a note on
stderr when it was rewritten), what is not is refused with one usage line and the run goes on."""

from __future__ import annotations

import click

from smtpcli.cli.state import STATE
from smtpcli.errors import ExitCode, UsageError


def normalize_names(names: list[str]) -> tuple[list[str], int]:
    """(the domains to check, deduplicated; 2 when some input was refused, else 0).

    A single name that is refused is a plain usage error (exit 2)."""
    from smtpcli.checks.domainname import NotADomainError, normalize_domain

    out: list[str] = []
    refused = 0
    for text in names:
        try:
            got = normalize_domain(text)
        except NotADomainError as exc:
            if len(names) == 1:
                raise UsageError(str(exc), hint="give a domain name such as example.com") from None
            refused = int(ExitCode.USAGE)
            click.echo(f"smtpcli: skipped: {exc}", err=True)
            if STATE.json:
                from smtpcli.render.json_out import error_document, render_json_line

                render_json_line(error_document("check-domain", "usage", str(exc),
                                                int(ExitCode.USAGE)))
            continue
        if got.note:
            click.echo(f"smtpcli: note: {got.note}", err=True)
        out.append(got.name)
    return list(dict.fromkeys(out)), refused
