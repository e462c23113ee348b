"""RFC 7208's conformance suite through the real command: each test's zonedata is served by the
DNS fixture and ``check-domain --ip --sender --helo`` must give the expected result (and the
exp= explanation where the suite names one), and its record lint must flag exactly the
records the suite finds malformed.

pyspf evaluates; what this checks is everything around it: the identities, the DNS bridge
(timeouts -> temperror, malformed names -> none, never "no record"), and the report.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from smtpcli.checks.spf_syntax import check_terms
from tests.servers.dns_fixture import DnsServer, start_dns_server
from tests.spf_suite import SuiteTest, all_tests, scenarios, serve

#: Tests of the suite we consider wrong, each with the RFC text that decides: none. (pyspf
#: 2.0.14 alone misses ptr-cname-loop over real DNS; the bridge applies RFC 7208 5.5's "that
#: domain name is skipped" to ptr validation, so all 203 pass.)
DISAGREE: dict[str, str] = {}
TESTS = all_tests()


@pytest.fixture(scope="module")
def suite_dns() -> Iterator[DnsServer]:
    server = start_dns_server()
    yield server
    server.stop()


def evaluate(cli: Any, server: DnsServer, test: SuiteTest) -> tuple[int, dict[str, Any]]:
    serve(server, test)
    # Short only where the zone has TIMEOUT markers (each costs one wait); elsewhere generous,
    # so a loaded machine cannot turn a slow answer into a temperror.
    timeout = "0.5" if server.behaviour else "3"
    code, out, err = cli("check-domain", "--only", "spf", "--json", "--nameserver",
                         server.nameserver, "--timeout", timeout, "--dns-retries", "0",
                         "--ip", test.host, "--sender", test.mailfrom, "--helo", test.helo)
    assert "Traceback" not in err
    return code, json.loads(out)


def check(test: SuiteTest, doc: dict[str, Any]) -> list[str]:
    """What differs from the suite's expectation (empty when the test passes)."""
    spf = doc["facts"]["families"]["spf"]
    first = spf["evaluation"]
    problems = []
    if first["identity"] != "mailfrom":
        problems.append(f"first identity is {first['identity']}")
    if first["result"] not in test.results:
        problems.append(f"result {first['result']}, want {'/'.join(test.results)}")
    if test.explanation is not None:
        want = None if test.explanation == "DEFAULT" else test.explanation
        if first.get("explanation") != want:
            problems.append(f"explanation {first.get('explanation')!r}, want {want!r}")
    finding = next(f for f in doc["findings"]
                   if f["id"] == "spf.result" and f["subject"] == "mailfrom")
    if finding["data"]["result"] != first["result"]:
        problems.append("finding and facts disagree")
    return problems


def lint_problems(test: SuiteTest, code: int, doc: dict[str, Any]) -> list[str]:
    """The same run also lints the record at the identity's domain (RFC 7208 section 12).
    pyspf, like RFC 7208 4.6, parses the whole record before evaluating: a suite test that
    is only permerror must be a fail-level spf.* finding (syntax, limits, missing targets),
    and a record the suite evaluates to something else must not be called malformed."""
    lint = [f for f in doc["findings"] if f["id"].startswith("spf.") and f["id"] != "spf.result"]
    fails = [f for f in lint if f["status"] == "fail"]
    if test.only_permerror:
        if not fails:
            return [f"permerror but no fail-level spf.* finding: {[f['id'] for f in lint]}"]
        if code != 1:
            return [f"a malformed record is a failed check (exit 1), not exit {code}"]
        for f in fails:
            if f["id"] == "spf.syntax":
                data = f["data"]
                if not (data["term"] in data["record"].split(" ") and data["problem"]
                        and repr(data["term"]) in f["summary"]
                        and f["reference"].startswith("RFC 7208")):
                    return [f"spf.syntax does not name the term and problem: {f}"]
                if f.get("fix") and check_terms(f["fix"], test.domain):
                    return [f"the fix {f['fix']!r} is not clean"]
    elif "permerror" not in test.results:
        wrong = [f["summary"] for f in fails
                 if f["id"] == "spf.syntax" and f.get("subject") == test.domain]
        if wrong:
            return [f"evaluates to {'/'.join(test.results)} but called malformed: {wrong}"]
    return []


@pytest.mark.parametrize("test", TESTS, ids=[t.name for t in TESTS])
def test_rfc7208_suite(cli, suite_dns: DnsServer, test: SuiteTest) -> None:
    code, doc = evaluate(cli, suite_dns, test)
    problems = check(test, doc)
    if test.name in DISAGREE:
        if not problems:
            pytest.fail(f"{test.name} now passes: remove it from DISAGREE")
        pytest.xfail(DISAGREE[test.name])
    assert not problems, f"{test.name} ({test.spec}): {problems}"
    lint = lint_problems(test, code, doc)
    assert not lint, f"{test.name} ({test.spec}): {lint}"
    # Both identities are reported, each with an RFC 7208 result.
    idents = {e["identity"]: e["result"] for e in doc["facts"]["families"]["spf"]["evaluations"]}
    assert set(idents) == {"mailfrom", "helo"}
    assert code in (0, 1, 3) and (code == 3) == ("temperror" in idents.values() or any(
        f["status"] == "error" for f in doc["findings"]))


def test_suite_size() -> None:
    assert len(TESTS) == 203 and len(scenarios()) == 16
    assert len(TESTS) - len(DISAGREE) >= 202
