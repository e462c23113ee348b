"""checkdmarc, the field's reference checker, as the oracle for check-domain's DMARC verdicts.

Both judge the same records (tests/dmarc_records.py) and the same test zones, served by the
DNS fixture: checkdmarc through its own parsing/lookup functions with a resolver pointed at the
fixture (it never reaches the network), check-domain through the real command. Every verdict
where both have one agrees, or the disagreement matches a rule below that names the RFC
section deciding it (checkdmarc 6 follows RFC 9989, check-domain lints by RFC 7489); a rule
that no longer explains anything fails the test, so the list stays true.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from smtpcli.checks.dmarc_syntax import DmarcLint, lint_dmarc
from tests.dmarc_records import RECORDS, record_verdict
from tests.servers.dns_fixture import DnsServer, start_dns_server

checkdmarc_dmarc = pytest.importorskip("checkdmarc.dmarc")

#: (name, applies to the record's RFC 7489 lint, the RFC text that decides). Each describes
#: a record RFC 7489 rejects and checkdmarc (RFC 9989) accepts.
RULES: list[tuple[str, Callable[[DmarcLint], bool], str]] = [
    ("p-missing", lambda lint: "p" not in lint.tags,
     "RFC 7489 6.3: p is REQUIRED in a policy record (6.6.3 then falls back to p=none only "
     "with a valid rua); RFC 9989 4.7 makes a missing p mean none"),
    ("removed-tags", lambda lint: bool(lint.bad_tags & {"pct", "ri", "rf"}),
     "RFC 7489 6.3 defines pct (0-100), ri (32-bit seconds) and rf (afrf); RFC 9989 removed "
     "the three tags and checkdmarc ignores their values"),
    ("alignment-value", lambda lint: bool(lint.bad_tags & {"adkim", "aspf"}),
     "RFC 7489 6.4: adkim/aspf are r or s, anything else does not parse; RFC 9989 4.8 "
     "discards an invalid value for the default r"),
    ("size-suffix", lambda lint: any("size limit" in p.problem for p in lint.problems),
     "RFC 7489 6.4: a dmarc-uri size is '!' 1*DIGIT [k/m/g/t]; RFC 9989 made the suffix "
     "obsolete and checkdmarc accepts any text after '!'"),
]

ZONES = {
    "test.": """
ok            MX  10 mx.ok.test.
mx.ok         A   192.0.2.1
_dmarc.ok     TXT "v=DMARC1; p=reject; rua=mailto:d@ok.test"
sub.ok        A   192.0.2.2
none          MX  10 mx.ok.test.
_dmarc.multi  TXT "v=DMARC1; p=none"
_dmarc.multi  TXT "v=DMARC1; p=reject"
multi         MX  10 mx.ok.test.
_dmarc.bad    TXT "v=DMARC1; p=block"
bad           MX  10 mx.ok.test.
_dmarc.pct    TXT "v=DMARC1; p=reject; pct=150"
pct           MX  10 mx.ok.test.
_dmarc.ext    TXT "v=DMARC1; p=reject; rua=mailto:d@reports.example"
ext           MX  10 mx.ok.test.
_dmarc.extok  TXT "v=DMARC1; p=reject; rua=mailto:d@reports.example"
extok         MX  10 mx.ok.test.
_dmarc.spf    TXT "v=spf1 -all"
spf           MX  10 mx.ok.test.
""",
    "reports.example.": """
@                           MX  10 mx.reports.example.
mx                          A   192.0.2.9
extok.test._report._dmarc   TXT "v=DMARC1"
""",
}
DOMAINS = ["ok.test", "sub.ok.test", "none.test", "multi.test", "bad.test", "pct.test",
           "ext.test", "extok.test", "spf.test"]


@pytest.fixture(scope="module")
def zone_dns() -> Iterator[DnsServer]:
    server = start_dns_server(zones=ZONES)
    yield server
    server.stop()


def oracle_record(record: str, resolver: Any) -> tuple[bool, list[str]]:
    """checkdmarc's verdict on one record: (valid, warnings)."""
    try:
        parsed = checkdmarc_dmarc.parse_dmarc_record(record, "example.com", resolver=resolver,
                                                     timeout=3.0, retries=0)
    except checkdmarc_dmarc.DMARCSyntaxError:  # its grammar, tag and URI errors
        return False, []
    return True, list(parsed["warnings"])


def explain(record: str) -> list[str]:
    lint = lint_dmarc(record)
    return [name for name, applies, _ in RULES if applies(lint)]


def test_records_agree_with_checkdmarc_or_the_rfc_decides(cli, zone_dns: DnsServer) -> None:
    resolver = zone_dns.resolver(3.0)
    used: set[str] = set()
    unexplained = []
    for record, _, _, _ in RECORDS:
        ours, findings = record_verdict(cli, record)
        theirs, warnings = oracle_record(record, resolver)
        if ours == theirs:
            ids = {f["id"] for f in findings}
            # where both warn: an unknown tag (RFC 7489 6.3: ignored), a non-mailto URI (6.2)
            assert ("dmarc.unknown-tag" in ids) == any("Unknown DMARC tag" in w
                                                       for w in warnings), record
            assert any("not a mailto" in f["summary"] for f in findings) == any(
                "scheme. That is valid" in w for w in warnings), record
            continue
        rules = explain(record)
        if ours or not rules:  # every rule is "RFC 7489 rejects what RFC 9989 accepts"
            unexplained.append((record, ours, theirs))
        used.update(rules)
    assert not unexplained, unexplained
    assert used == {name for name, _, _ in RULES}, "a rule explains nothing: drop it"


def ours_on_domain(cli: Any, server: DnsServer, domain: str) -> tuple[str, bool]:
    code, out, err = cli("check-domain", domain, "--only", "dmarc", "--json", "--nameserver",
                         server.nameserver, "--timeout", "3", "--dns-retries", "0")
    assert "Traceback" not in err and code in (0, 1), (domain, code, err)
    ids = {f["id"] for f in json.loads(out)["findings"] if f["status"] in ("fail", "warn")}
    verdict = ("missing" if "dmarc.missing" in ids else "multiple" if "dmarc.multiple" in ids
               else "invalid" if ids & {"dmarc.syntax", "dmarc.rua-invalid"} else "valid")
    return verdict, "dmarc.rua-unauthorized" in ids


def theirs_on_domain(server: DnsServer, domain: str) -> tuple[str, bool]:
    try:
        got = checkdmarc_dmarc.get_dmarc_record(domain, resolver=server.resolver(3.0),
                                                timeout=3.0, retries=0)
    except (checkdmarc_dmarc.DMARCRecordNotFound,
            checkdmarc_dmarc.UnrelatedTXTRecordFoundAtDMARC):
        return "missing", False
    except checkdmarc_dmarc.MultipleDMARCRecords:
        return "multiple", False
    except checkdmarc_dmarc.DMARCSyntaxError:
        return "invalid", False
    unauthorized = any("does not indicate that it accepts DMARC reports" in w
                       for w in got["parsed"]["warnings"])
    return "valid", unauthorized


@pytest.mark.parametrize("domain", DOMAINS)
def test_zones_agree_with_checkdmarc(cli, zone_dns: DnsServer, domain: str) -> None:
    ours = ours_on_domain(cli, zone_dns, domain)
    theirs = theirs_on_domain(zone_dns, domain)
    if ours != theirs:
        code, out, _ = cli("check-domain", domain, "--only", "dmarc", "--json",
                           "--nameserver", zone_dns.nameserver, "--timeout", "3")
        record = (json.loads(out)["facts"]["families"].get("dmarc", {}).get("records")
                  or [""])[0]
        assert ours[0] == "invalid" and theirs[0] == "valid" and explain(record), (
            domain, ours, theirs)
