"""Result model and exit-code mapping."""

from __future__ import annotations

import enum
import json

from hypothesis import given
from hypothesis import strategies as st

from smtpcli.errors import (
    ConnectError,
    ExitCode,
    SmtpReplyError,
    UsageError,
    exit_code_for_reply,
)
from smtpcli.results import Finding, Report, Status, exit_code_for_status, jsonable


def test_status_worst_and_empty() -> None:
    assert Status.worst([]) is Status.OK
    assert Status.worst([Status.INFO, Status.FAIL, Status.WARN]) is Status.FAIL
    assert Status.worst([Status.FAIL, Status.ERROR]) is Status.ERROR


def test_report_to_dict_has_schema_exit_code_and_omits_unset_fields() -> None:
    report = Report("check-domain", "example.test", summary="1 problem")
    report.add("spf.missing", Status.FAIL, "no SPF record", reference="RFC 7208 4.5")
    data = report.to_dict()
    assert data["schema"] == 1
    assert data["status"] == "fail"
    assert data["findings"] == [
        {"id": "spf.missing", "status": "fail", "summary": "no SPF record",
         "reference": "RFC 7208 4.5"}
    ]
    assert data["exit_code"] == 1  # always present, 0 included (docs/conventions.md)
    json.dumps(data)


def test_exit_codes_by_status() -> None:
    def code(*statuses: Status, strict: bool = False) -> ExitCode:
        report = Report("x", findings=[Finding(f"a.{i}", s, "s") for i, s in enumerate(statuses)])
        return exit_code_for_status(report, strict=strict)

    assert code() is ExitCode.OK
    assert code(Status.WARN) is ExitCode.OK
    assert code(Status.WARN, strict=True) is ExitCode.CHECK_FAILED
    assert code(Status.FAIL, Status.INFO) is ExitCode.CHECK_FAILED
    assert code(Status.FAIL, Status.ERROR) is ExitCode.INCOMPLETE


def test_exception_exit_codes() -> None:
    assert UsageError("x").exit_code == 2
    assert ConnectError("x").exit_code == 3
    assert SmtpReplyError("x", code=451).exit_code == 4
    assert SmtpReplyError("x", code=554).exit_code == 5
    assert exit_code_for_reply(250) == 0
    assert ConnectError("a\nb", hint="try -4").one_line() == "a b (try -4)"


class _Colour(enum.Enum):
    RED = "red"


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.binary(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children)
    | st.sets(st.integers()).map(frozenset),
    max_leaves=20,
))
def test_jsonable_always_serialises(value: object) -> None:
    json.dumps(jsonable(value))
    json.dumps(jsonable({"colour": _Colour.RED, "v": value}))
