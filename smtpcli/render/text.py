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


def text_width() -> int:
    """The terminal's width (COLUMNS first), 80 when piped; never narrower than 60."""
    from smtpcli.render.terminal import columns

    return max(60, columns())


def _wrapped(first: str, first_len: int, text: str, pad: str, width: int) -> list[str]:
    """``first`` (already painted, ``first_len`` visible characters) then ``text``, wrapped to
    ``width`` with continuation lines at ``pad``. Words (host names, URLs) are never split."""
    if first_len + len(text) <= width and text == text.strip() and text.isprintable():
        return [first + text]  # fits: what textwrap would return, without importing it
    import textwrap

    lines = textwrap.wrap(text, width=width, initial_indent=" " * first_len,
                          subsequent_indent=pad, break_long_words=False,
                          break_on_hyphens=False) or [""]
    return [first + lines[0][first_len:], *lines[1:]]


def finding_lines(finding: Finding, paint: Painter, indent: str = "  ") -> list[str]:
    """One finding: badge, id, summary, then detail and fix lines, wrapped to the terminal."""
    width = text_width()
    pad = indent + "      "
    prefix = f"{indent}{badge(finding.status, paint)} {paint(finding.id, 'bold')}  "
    prefix_len = len(indent) + 6 + len(finding.id) + 2
    if width - prefix_len < 30:  # a long id: the summary starts on its own line
        lines = [prefix.rstrip(), *_wrapped(pad + "  ", len(pad) + 2, finding.summary,
                                            pad + "  ", width)]
    else:
        lines = _wrapped(prefix, prefix_len, finding.summary, pad + "  ", width)

    def labelled(label: str, text: str) -> list[str]:
        return _wrapped(f"{pad}{paint(label, 'dim')} ", len(pad) + len(label) + 1, text,
                        pad + "  ", width)

    if finding.subject:
        lines += labelled("on:", finding.subject)
    if finding.detail:
        for line in finding.detail.splitlines():
            lines += _wrapped(pad, len(pad), line, pad + "  ", width)
    if finding.fix:
        lines += labelled("fix:", finding.fix)
    if finding.reference:
        lines += labelled("see:", finding.reference)
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
