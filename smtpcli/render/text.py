"""Report -> human text. Commands may pass a facts renderer for their own facts."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import TextIO

from smtpcli.render.style import Painter
from smtpcli.results import Finding, Report, Status

FactsRenderer = Callable[[Report, Painter], Iterable[str]]

_BADGE = {
    Status.OK: "OK", Status.INFO: "INFO", Status.WARN: "WARN", Status.FAIL: "FAIL",
    Status.ERROR: "ERROR",
}


def badge(status: Status, paint: Painter) -> str:
    return paint(f"{_BADGE[status]:<5}", status.value)


def finding_lines(finding: Finding, paint: Painter, indent: str = "  ") -> list[str]:
    """One finding: badge, id, summary, then detail and fix lines."""
    head = f"{indent}{badge(finding.status, paint)} {paint(finding.id, 'bold')}  {finding.summary}"
    lines = [head]
    pad = indent + "      "
    if finding.subject:
        lines.append(f"{pad}{paint('on:', 'dim')} {finding.subject}")
    if finding.detail:
        lines.extend(f"{pad}{line}" for line in finding.detail.splitlines())
    if finding.fix:
        lines.append(f"{pad}{paint('fix:', 'dim')} {finding.fix}")
    if finding.reference:
        lines.append(f"{pad}{paint('see:', 'dim')} {finding.reference}")
    return lines


def render_text(
    report: Report,
    stream: TextIO | None = None,
    facts_renderer: FactsRenderer | None = None,
    *,
    show_ok: bool = True,
) -> None:
    """Write the report: facts (command specific), findings, then the summary line."""
    out = stream or sys.stdout
    paint = Painter.for_stream(out)
    lines: list[str] = []
    if facts_renderer is not None:
        lines.extend(facts_renderer(report, paint))
    shown = [f for f in report.findings if show_ok or f.status is not Status.OK]
    if shown:
        if lines:
            lines.append("")
        for finding in shown:
            lines.extend(finding_lines(finding, paint))
    if report.summary:
        if lines:
            lines.append("")
        lines.append(f"{badge(report.status, paint)} {report.summary}")
    out.write("\n".join(lines) + ("\n" if lines else ""))
    out.flush()
