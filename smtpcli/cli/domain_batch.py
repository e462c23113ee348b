"""``check-domain`` over many domains: results streamed as they finish, ``--resume``.

Nothing per domain is kept after its result is written (JSON Lines or text), except what the
end of the run needs: its exit code, one summary row in text mode, and its report with
``--junit`` (a JUnit file is one document). With the DNS client's bounded cache, memory stays
flat whatever the number of domains (issue 17: 100,000 in < 150 MiB).

``--resume FILE`` reads the JSON Lines of an earlier ``--json`` run (usually the file this run
appends to) and checks only the domains it has no result for, so an interrupted scan goes on
where it stopped. Splitting a scan across processes or machines is left to existing runners
(GNU parallel, a CI matrix): docs/performance.md shows how.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from smtpcli.errors import UsageError

if TYPE_CHECKING:
    from smtpcli.checks.common import CheckOptions
    from smtpcli.checks.domain import DomainResult
    from smtpcli.dnsq.client import DnsClient
    from smtpcli.results import Report


def read_resume(path: str) -> tuple[set[str], int]:
    """(domains with a result in ``path``, the worst exit code among them).

    A last line without its newline was cut off by the interruption: it is removed from the
    file (so that appending goes on at a line boundary) and its domain is checked again. A
    missing file is an empty one (the first run of a resumable scan)."""
    done: set[str] = set()
    worst = 0
    try:
        fh = open(path, "r+b")  # noqa: SIM115 (closed below, after a possible truncate)
    except FileNotFoundError:
        return done, worst
    except OSError as exc:
        raise UsageError(f"cannot read --resume file {path}: {exc.strerror}") from None
    with fh:
        offset = 0
        for raw in fh:
            if not raw.endswith(b"\n"):
                fh.truncate(offset)
                sys.stderr.write(f"smtpcli: --resume: removed an unfinished last line from "
                                 f"{path}; its domain is checked again\n")
                break
            offset += len(raw)
            try:
                doc = json.loads(raw)
            except ValueError:
                continue  # not a result line; never fatal for a resume
            target = doc.get("target") if isinstance(doc, dict) else None
            if isinstance(target, str) and target:
                done.add(target)
                code = doc.get("exit_code")
                worst = max(worst, code if isinstance(code, int) else 0)
    return done, worst


def run_batch(names: list[str], make_client: Callable[[], DnsClient], opts: CheckOptions,
              families: tuple[str, ...], concurrency: int, deadline: float, *, json_mode: bool,
              strict: bool, junit_path: str | None, quiet: bool, resume: str | None) -> int:
    """Check ``names`` (minus those already in ``resume``), writing each result as it
    finishes; returns the worst exit code of the whole scan, resumed part included."""
    import asyncio
    import contextlib
    import gc

    from smtpcli.checks.domain import check_domains, worst_exit
    from smtpcli.render.domain import render_domain
    from smtpcli.render.style import Painter

    worst = 0
    if resume is not None:
        if not json_mode:
            raise UsageError("--resume reads the JSON Lines of an earlier --json run: "
                             "give --json too")
        done, worst = read_resume(resume)
        before = len(names)
        names = [n for n in names if n not in done]
        sys.stderr.write(f"smtpcli: --resume: {before - len(names)} of {before} domains "
                         f"already in {resume}, {len(names)} to check\n")
    paint = Painter.for_stream(sys.stdout)
    rows: dict[str, tuple[Any, list[str]]] = {}  # text mode: the summary table
    reports: list[Report] = []  # --junit only
    progress: Any = None
    task: Any = None
    stack = contextlib.ExitStack()
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import Progress

        progress = stack.enter_context(Progress(console=Console(stderr=True), transient=True))
        task = progress.add_task("checking domains", total=len(names))

    def on_done(res: DomainResult) -> None:
        nonlocal worst
        from smtpcli.results import Status

        report = res.report
        code = report.exit_code = worst_exit([report], strict)  # every line says it, 0 too
        worst = max(worst, code)
        if junit_path:
            reports.append(report)
        if json_mode:
            from smtpcli.render.json_out import render_json_line

            render_json_line(report.to_dict())
        else:
            text = render_domain(res, paint, show_ok=not quiet) + "\n"
            if progress is not None:
                progress.console.file.flush()
            sys.stdout.write(text)
            sys.stdout.flush()
            rows[res.domain] = (report.status, sorted(
                {f.id for f in report.findings if f.status.rank >= Status.WARN.rank}))
        if progress is not None:
            progress.advance(task)

    # Everything alive now (modules, tables) lives as long as the run: out of the collector's
    # way, so full collections do not grow with the scan (issue 17: 28% of CPU at 5,000).
    gc.freeze()
    with stack:
        asyncio.run(check_domains(names, make_client, opts, families, concurrency, deadline,
                                  on_done))
    if junit_path:
        from smtpcli.render.junit import write_junit

        write_junit(junit_path, reports, strict=strict)
    if not json_mode:
        _summary(names, rows, paint)
    return worst


def _summary(names: list[str], rows: dict[str, tuple[Any, list[str]]], paint: Any) -> None:
    from smtpcli.render.text import badge
    from smtpcli.results import Status

    width = max((len(n) for n in names), default=6)
    lines = [paint(f"{'DOMAIN':<{width}}  STATUS  PROBLEMS", "bold")]
    for name in names:
        status, problems = rows[name]
        lines.append(f"{name:<{width}}  {badge(status, paint)}   {', '.join(problems) or '-'}")
    counts = {s: sum(1 for st, _ in rows.values() if st is s) for s in Status}
    lines.append(f"{len(rows)} domains: " + ", ".join(
        f"{n} {s.value}" for s, n in counts.items() if n))
    sys.stdout.write("\n".join(lines) + "\n")
