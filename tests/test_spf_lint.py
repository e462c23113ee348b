"""The SPF record lint against RFC 7208 section 12: every permerror of the RFC 7208 suite is a
fail-level spf.* finding (naming the term and the problem for syntax), no suite record that
evaluates without permerror is called malformed, and a malformed record never exits 3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpcli.checks.spf_syntax import check_terms, fixed_record
from tests.servers.dns_fixture import DnsServer, start_dns_server
from tests.spf_suite import SuiteTest, all_tests, serve

TESTS = all_tests()
PERMERROR = [t for t in TESTS if t.only_permerror]
CLEAN = [t for t in TESTS if "permerror" not in t.results]


@pytest.fixture(scope="module")
def suite_dns() -> Iterator[DnsServer]:
    server = start_dns_server()
    yield server
    server.stop()


def lint(cli: Any, server: DnsServer, test: SuiteTest) -> tuple[int, dict[str, Any], str]:
    serve(server, test)
    code, out, err = cli("check-domain", test.domain, "--only", "spf", "--json",
                         "--nameserver", server.nameserver, "--timeout", "0.25",
                         "--dns-retries", "0")
    return code, json.loads(out), err


@pytest.mark.parametrize("test", PERMERROR, ids=[t.name for t in PERMERROR])
def test_every_suite_permerror_is_a_fail_finding(cli, suite_dns: DnsServer,
                                                 test: SuiteTest) -> None:
    code, doc, err = lint(cli, suite_dns, test)
    assert "Traceback" not in err
    fails = [f for f in doc["findings"] if f["id"].startswith("spf.") and f["status"] == "fail"]
    assert fails, f"{test.name}: no fail-level spf.* finding: {doc['findings']}"
    assert code == 1, f"{test.name}: a malformed record is a failed check, not exit {code}"
    for f in fails:
        if f["id"] == "spf.syntax":
            record = f["data"]["record"]
            assert f["data"]["term"] in record.split(" ") and f["data"]["problem"]
            assert repr(f["data"]["term"]) in f["summary"] and f["reference"].startswith("RFC 7208")
            if f.get("fix"):  # a fix is a record that lints clean
                assert not check_terms(f["fix"], test.domain)


@pytest.mark.parametrize("test", CLEAN, ids=[t.name for t in CLEAN])
def test_no_syntax_finding_where_the_suite_evaluates(cli, suite_dns: DnsServer,
                                                     test: SuiteTest) -> None:
    """pyspf (like RFC 7208 4.6) parses the whole record before evaluating, so a record the
    suite evaluates to anything but permerror has no syntax error."""
    _, doc, err = lint(cli, suite_dns, test)
    assert "Traceback" not in err
    wrong = [f["summary"] for f in doc["findings"]
             if f["id"] == "spf.syntax" and f.get("subject") == test.domain]
    assert not wrong, f"{test.name} ({'/'.join(test.results)}): {wrong}"


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


@settings(max_examples=300, deadline=None)
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
