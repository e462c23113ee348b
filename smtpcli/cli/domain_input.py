"""check-domain's input, one name at a time: what is clearly a domain is checked (with a note on
stderr when it was rewritten), what is not is refused with one usage line and the run goes on."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import click

from smtpcli.cli.state import STATE
from smtpcli.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable


def normalize_names(names: Iterable[str]) -> tuple[list[str], int]:
    """(the domains to check, deduplicated; 2 when some input was refused, else 0).

    A single name that is refused is a plain usage error (exit 2). ``names`` is read once, and
    only the normalised names are kept: a list of 100,000 costs about 9 MiB, half of what
    reading it all first and normalising it after cost (issue 17)."""
    from smtpcli.checks.domainname import NotADomainError, normalize_domain

    names = iter(names)
    head: list[str] = []  # enough of the input to know whether it is a single name
    first: set[str] = set()
    for text in names:
        head.append(text)
        first.add(_key(text))
        if len(first) > 1:
            break
    single = len(first) == 1
    out: dict[str, None] = {}  # an ordered set
    told: set[str] = set()  # inputs refused or rewritten (rare): said once, like names
    refused = 0
    for text in itertools.chain(head, names):
        key = _key(text)
        if key in out or key in told:
            continue  # the same name again (a plain name's key is its normalised form)
        try:
            got = normalize_domain(text)
        except NotADomainError as exc:
            if single:
                raise UsageError(str(exc), hint="give a domain name such as example.com") from None
            told.add(key)
            refused = int(ExitCode.USAGE)
            click.echo(f"smtpcli: skipped: {exc}", err=True)
            if STATE.json:
                from smtpcli.render.json_out import error_document, render_json_line

                render_json_line(error_document("check-domain", "usage", str(exc),
                                                int(ExitCode.USAGE)))
            continue
        if got.note:
            told.add(key)
            click.echo(f"smtpcli: note: {got.note}", err=True)
        out[got.name] = None
    return list(out), refused


def _key(text: str) -> str:
    return text.rstrip(".").lower()
