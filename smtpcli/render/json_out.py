"""Report -> one JSON document (``"schema": 1``), or JSON Lines for streams."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from smtpcli.results import SCHEMA_VERSION, Report, jsonable


def dumps(data: Any, *, pretty: bool = True) -> str:
    return json.dumps(jsonable(data), indent=2 if pretty else None, ensure_ascii=False,
                      separators=None if pretty else (",", ":"))


def render_json(report: Report, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    out.write(dumps(report.to_dict()) + "\n")
    out.flush()


def render_json_line(event: dict[str, Any], stream: TextIO | None = None) -> None:
    """One JSON Lines record; adds the schema version when the event has none."""
    out = stream or sys.stdout
    record = {"schema": SCHEMA_VERSION, **event}
    out.write(dumps(record, pretty=False) + "\n")
    out.flush()


def error_document(command: str | None, kind: str, message: str, exit_code: int) -> dict[str, Any]:
    """The JSON shape of an error, printed on stdout in --json mode."""
    return {
        "schema": SCHEMA_VERSION, "command": command, "status": "error",
        "error": {"kind": kind, "message": message}, "exit_code": exit_code,
    }
