"""The one result model every command builds: Status, Finding, Report.

Text, JSON and JUnit renderers all read a Report, so the renderings cannot drift.
"""

from __future__ import annotations

import enum
from typing import Any

from smtpcli.errors import ExitCode
from smtpcli.records import Record

SCHEMA_VERSION = 1


class Status(enum.Enum):
    """Outcome of a finding or a whole report, ordered by severity."""

    OK = "ok"
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def worst(cls, statuses: list[Status] | tuple[Status, ...]) -> Status:
        """The most severe status, ``OK`` for none."""
        return max(statuses, key=lambda s: s.rank, default=cls.OK)


_RANK = {Status.OK: 0, Status.INFO: 1, Status.WARN: 2, Status.FAIL: 3, Status.ERROR: 4}
_NOUNS = {Status.ERROR: "error", Status.FAIL: "failure", Status.WARN: "warning"}


def problem_counts(statuses: list[Status]) -> list[str]:
    """'2 errors', '1 failure', '3 warnings' (worst first) for summary lines; empty if none."""
    parts = []
    for status in (Status.ERROR, Status.FAIL, Status.WARN):
        n = sum(1 for s in statuses if s is status)
        if n:
            parts.append(f"{n} {_NOUNS[status]}{'' if n == 1 else 's'}")
    return parts


def jsonable(value: Any) -> Any:
    """Turn facts into JSON-safe data (enums, bytes, sets, dataclasses with to_dict)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v) for v in items]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict())
    return str(value)


class Finding(Record):
    """One check result with a stable dotted id such as ``spf.too-many-lookups``."""

    __slots__ = ("id", "status", "summary", "detail", "reference", "fix", "subject", "data")

    def __init__(self, id: str, status: Status, summary: str,
                 detail: str | None = None, reference: str | None = None,
                 fix: str | None = None, subject: str | None = None,
                 data: dict[str, Any] | None = None) -> None:
        self.id = id
        self.status = status
        self.summary = summary
        self.detail = detail
        self.reference = reference
        self.fix = fix
        self.subject = subject
        self.data: dict[str, Any] = {} if data is None else data

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status.value, "summary": self.summary}
        for key in ("detail", "reference", "fix", "subject"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.data:
            out["data"] = jsonable(self.data)
        return out


class Report(Record):
    """Everything a command found: findings plus facts, and a one-line summary."""

    __slots__ = ("command", "target", "findings", "facts", "summary", "status_override",
                 "exit_code")

    def __init__(self, command: str, target: str | None = None,
                 findings: list[Finding] | None = None, facts: dict[str, Any] | None = None,
                 summary: str = "", status_override: Status | None = None,
                 exit_code: int | None = None) -> None:
        self.command = command
        self.target = target
        self.findings: list[Finding] = [] if findings is None else findings
        self.facts: dict[str, Any] = {} if facts is None else facts
        self.summary = summary
        self.status_override = status_override
        self.exit_code = exit_code

    def add(
        self, id: str, status: Status, summary: str, **kwargs: Any
    ) -> Finding:
        """Append a finding and return it."""
        finding = Finding(id=id, status=status, summary=summary, **kwargs)
        self.findings.append(finding)
        return finding

    @property
    def status(self) -> Status:
        if self.status_override is not None:
            return self.status_override
        return Status.worst([f.status for f in self.findings])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "command": self.command,
            "target": self.target,
            "status": self.status.value,
            "summary": self.summary,
            "findings": [f.to_dict() for f in self.findings],
            "facts": jsonable(self.facts),
        }
        # Always present (docs/conventions.md): what the command exits with for this report.
        out["exit_code"] = self.exit_code if self.exit_code is not None else \
            int(exit_code_for_status(self))
        return out


def exit_code_for_status(report: Report, *, strict: bool = False) -> ExitCode:
    """Map a finished report to an exit code: fail -> 1, warn -> 1 with --strict, error -> 3."""
    if report.exit_code is not None:
        return ExitCode(report.exit_code)
    status = report.status
    if status is Status.ERROR:
        return ExitCode.INCOMPLETE
    if status is Status.FAIL or (strict and status is Status.WARN):
        return ExitCode.CHECK_FAILED
    return ExitCode.OK
