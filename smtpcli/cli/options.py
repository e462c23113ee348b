"""Shared option decorators and the common finish step (render + exit code)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from smtpcli.cli.state import STATE
from smtpcli.results import Report, exit_code_for_status

if TYPE_CHECKING:
    from smtpcli.render.text import FactsRenderer

F = TypeVar("F", bound=Callable[..., Any])


def _mark_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    STATE.json = bool(value)
    STATE.command = ctx.info_name
    return value


def json_option(f: F) -> F:
    """``--json``: one JSON document on stdout (``"schema": 1``)."""
    return click.option(
        "--json", "json_mode", is_flag=True, is_eager=True, callback=_mark_json,
        help="Print one JSON document on stdout (JSON Lines for streams).",
    )(f)


def dns_options(f: F) -> F:
    """``--nameserver`` (repeatable) and ``--dns-retries`` for commands that look things up."""
    f = click.option(
        "--nameserver", "nameservers", multiple=True, metavar="HOST[:PORT]",
        envvar="SMTPCLI_NAMESERVER",
        help="Ask this DNS server (repeatable; default: the system's resolvers).",
    )(f)
    f = click.option(
        "--dns-retries", type=click.IntRange(0, 10), default=1, show_default=True,
        help="Retries per DNS question after a timeout.",
    )(f)
    return f


def timeout_option(default: float = 10.0, what: str = "every network step") -> Callable[[F], F]:
    def deco(f: F) -> F:
        return click.option(
            "--timeout", type=click.FloatRange(0.1, 3600), default=default, show_default=True,
            metavar="SECONDS", help=f"Upper bound for {what}.",
        )(f)
    return deco


def strict_option(f: F) -> F:
    return click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")(f)


def junit_option(f: F) -> F:
    return click.option(
        "--junit", "junit_path", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
        help="Also write the results as JUnit XML to FILE.",
    )(f)


def finish(
    report: Report,
    *,
    json_mode: bool,
    strict: bool = False,
    junit_path: str | None = None,
    facts_renderer: FactsRenderer | None = None,
    show_ok: bool = True,
) -> int:
    """Render the report (text or JSON), write JUnit if asked, and return the exit code."""
    code = exit_code_for_status(report, strict=strict)
    report.exit_code = int(code)  # in every JSON document, 0 included (docs/conventions.md)
    if junit_path:
        from smtpcli.render.junit import write_junit

        write_junit(junit_path, [report], strict=strict)
    if json_mode:
        from smtpcli.render.json_out import render_json

        render_json(report)
    else:
        from smtpcli.render.text import render_text

        render_text(report, facts_renderer=facts_renderer, show_ok=show_ok)
    return int(code)
