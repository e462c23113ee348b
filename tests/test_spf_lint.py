"""The SPF record lint against RFC 7208 section 12: the cases issue 15 names, through
`check-domain --record` (a malformed record is exit 1, never 3), obvious fixes, and any text.
The RFC 7208 suite's records are linted in tests/test_spf_suite.py (same command run)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpcli.checks.spf_syntax import check_terms, fixed_record

# --- table: the cases named in issue 15, through --record -----------------------------------

CASES = [
    ("v=spf1 a/33 -all", "a/33", "CIDR length"),
    ("v=spf1 mx//129 -all", "mx//129", "CIDR length"),
    ("v=spf1 ip4:1.2.3.4//32 -all", "ip4:1.2.3.4//32", "dual"),
    ("v=spf1 ip4:1.2.3.4/032 -all", "ip4:1.2.3.4/032", "leading zeros"),
    ("v=spf1 a:foo-bar -all", "a:foo-bar", "domain-spec"),
    ("v=spf1 a:abc.123 -all", "a:abc.123", "domain-spec"),
    ("v=spf1 mx:example.-com -all", "mx:example.-com", "domain-spec"),
    ("v=spf1 a:example.com:8080 -all", "a:example.com:8080", "domain-spec"),
    ("v=spf1 a:foo.example.com\x00 -all", "a:foo.example.com\x00", "control character"),
    ("v=spf1 a: -all", "a:", "empty domain-spec"),
    ("v=spf1 a:%{a}.example.com -all", "a:%{a}.example.com", "macro letter"),
    ("v=spf1 exists:%(ir).example.com -all", "exists:%(ir).example.com", "invalid macro"),
    ("v=spf1 exists:foo%.example.com -all", "exists:foo%.example.com", "invalid macro"),
    ("v=spf1 a:%{r}.example.com -all", "a:%{r}.example.com", "exp= text"),
    ("v=spf1 redirect=-all", "redirect=-all", "domain-spec"),
    ("v=spf1 -all exp=-all", "exp=-all", "domain-spec"),
    ("v=spf1 a\t-all", "a\t-all", "only spaces"),
    ("v=spf1 include:example.com/24 -all", "include:example.com/24", "no CIDR"),
    ("v=spf1 exists:example.com/24 -all", "exists:example.com/24", "no CIDR"),
    ("v=spf1 ptr/0 -all", "ptr/0", "no CIDR"),
    ("v=spf1 a:\u00efgarbage.example.net -all", "a:\u00efgarbage.example.net", "non-ASCII"),
    ("v=spf1 a:b\u00fccher.example -all", "a:b\u00fccher.example", "non-ASCII"),
    ("v=spf1 a -all redirect=a.example redirect=b.example", "redirect=b.example", "only once"),
]


@pytest.mark.parametrize(("record", "term", "words"), CASES, ids=[c[1] for c in CASES])
def test_record_lint_table(cli, record: str, term: str, words: str) -> None:
    code, out, err = cli("check-domain", "--record", record, "--only", "spf", "--json",
                         "--nameserver", "127.0.0.1:9", "--timeout", "0.2")
    assert "Traceback" not in err and code == 1, (code, err)
    found = [f for f in json.loads(out)["findings"] if f["id"] == "spf.syntax"]
    assert [f["data"]["term"] for f in found] == [term]
    assert words.lower() in found[0]["data"]["problem"].lower()


FIXES = [
    ("v=spf1 a:192.0.2.1 -all", "v=spf1 ip4:192.0.2.1 -all"),
    ("v=spf1 mx -all:x", "v=spf1 mx -all"),
    ("v=spf1 mx ~all/8", "v=spf1 mx ~all"),
    ("v=spf1 ip4:192.0.2.0/024 -all", "v=spf1 ip4:192.0.2.0/24 -all"),
    ("v=spf1 mx,\ta -all", "v=spf1 mx, a -all"),  # not obvious: the comma stays -> no fix
    ("v=spf1 a:mail.example.com, -all", "v=spf1 a:mail.example.com -all"),
    ("v=spf1 \u00a0mx -all", "v=spf1 mx -all"),
    ("v=spf1 a/33 -all", None),  # which length was meant is not obvious
]


@pytest.mark.parametrize(("record", "fixed"), FIXES)
def test_fixed_record_only_when_obvious_and_clean(record: str, fixed: str | None) -> None:
    problems = check_terms(record, "example.com")
    assert problems
    got = fixed_record(record, problems)
    if fixed is None or check_terms(fixed, "example.com"):
        assert got is None
    else:
        assert got == fixed


@settings(deadline=None)
@given(st.lists(st.one_of(
    st.sampled_from(["a", "mx", "-all", "a/33", "ip4:192.0.2.1", "ip6:::1", "include:x.test",
                     "exists:%{i}.x.test", "redirect=x.test", "exp=%{d}", "ptr", "%", "=",
                     "a:%{r}", "mx//129", "all:x"]),
    st.text(max_size=12)), max_size=8))
def test_lint_never_raises_and_fixes_are_clean(terms: list[str]) -> None:
    record = " ".join(["v=spf1", *terms])
    problems = check_terms(record, "example.com")
    assert all(p.term and p.problem and p.reference.startswith("RFC 7208") for p in problems)
    fixed = fixed_record(record, problems)
    assert fixed is None or not check_terms(fixed, "record.invalid")
