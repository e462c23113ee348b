"""The DMARC lint against RFC 7489 6.3/6.4, as a table (tests/dmarc_records.py) and through
`check-domain --record`; every fix it offers is a valid record."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpcli.checks.dmarc_syntax import KNOWN_TAGS, is_dmarc_record, lint_dmarc, repair, with_tag
from tests.dmarc_records import RECORDS, record_verdict


@pytest.mark.parametrize(("record", "valid", "fails", "warns"), RECORDS,
                         ids=[r[0] for r in RECORDS])
def test_lint_table(record: str, valid: bool, fails: set[str], warns: set[str]) -> None:
    lint = lint_dmarc(record)
    assert lint.valid is valid
    assert {p.tag for p in lint.problems if p.level == "fail"} >= fails
    if fails:
        assert {p.tag for p in lint.problems if p.level == "fail"} == fails
    assert {p.tag for p in lint.problems if p.level == "warn"} == warns
    assert all(p.reference.startswith("RFC ") for p in lint.problems)
    fixed = repair(record, lint)
    assert fixed is None or lint_dmarc(fixed).valid


@pytest.mark.parametrize(("record", "valid", "fails", "warns"), RECORDS,
                         ids=[r[0] for r in RECORDS])
def test_record_option_findings(cli, record: str, valid: bool, fails: set[str],
                                warns: set[str]) -> None:
    ok, findings = record_verdict(cli, record)
    assert ok is valid
    for f in findings:  # every DMARC fix offered is a valid record (RFC 7489 6.4)
        fix = f.get("fix")
        if fix and f["id"].startswith("dmarc.") and is_dmarc_record(fix):
            assert lint_dmarc(fix).valid, (f["id"], fix)
    if is_dmarc_record(record) and not valid and fails - {"rua", "ruf", ""}:
        assert all(f.get("fix") for f in findings if f["id"] == "dmarc.syntax")


def test_repair_keeps_what_was_valid() -> None:
    fixed = repair("v=DMARC1; pct=150; p=reject; rua=mailto:a@example.com,nope; x=1; sp=none")
    assert fixed == "v=DMARC1; p=reject; rua=mailto:a@example.com; sp=none"
    assert repair("v=DMARC1; sp=reject") == "v=DMARC1; p=none; sp=reject"  # 6.6.3
    assert with_tag("v=DMARC1; p=none", "p", "quarantine") == "v=DMARC1; p=quarantine"
    assert with_tag("v=DMARC1; p=none; pct=20", "pct", "100") == "v=DMARC1; p=none; pct=100"


tag = st.sampled_from([*KNOWN_TAGS, "x", "P", "rua", "ruf"])
value = st.one_of(st.sampled_from(["none", "reject", "r", "s", "0:1", "afrf", "100", "101",
                                   "mailto:a@example.com!5m", "mailto:x", "DMARC1", "y"]),
                  st.text(max_size=10))


@settings(deadline=None)
@given(st.lists(st.tuples(tag, value), max_size=7), st.sampled_from(["; ", ";", " ; "]),
       st.sampled_from(["", ";", ";;"]))
def test_any_record_lints_and_every_fix_is_valid(pairs: list[tuple[str, str]], sep: str,
                                                 end: str) -> None:
    record = sep.join(["v=DMARC1", *(f"{t}={v}" for t, v in pairs)]) + end
    lint = lint_dmarc(record)
    fixed = repair(record, lint)
    assert fixed is not None and lint_dmarc(fixed).valid
    for t, v in (("p", "quarantine"), ("pct", "100"), ("rua", "mailto:d@example.com")):
        got = with_tag(record, t, v)
        assert got is None or lint_dmarc(got).valid
