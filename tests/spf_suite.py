"""The RFC 7208 SPF conformance suite (tests/data/spf-rfc7208/) served from the DNS fixture.

Zone data follows pyspf's own driver (test/testspf.py in pyspf's sdist), which the suite's
authors wrote it for: an SPF (type 99) record is also served as TXT unless the name lists a TXT
record; ``TXT: NONE`` lists none; a bare ``TIMEOUT`` means no reply to any type not listed
before it. One root zone per scenario, so unlisted names are NXDOMAIN (names repeat across
scenarios: serve one scenario at a time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.SPF
import dns.rdtypes.ANY.TXT
import dns.zone

from tests.servers.dns_fixture import DnsServer

SUITE = Path(__file__).resolve().parent / "data" / "spf-rfc7208" / "rfc7208-tests.yml"
IN = dns.rdataclass.IN
#: The types SPF evaluation asks; TIMEOUT silences those not listed before it.
ASKED = ("A", "AAAA", "MX", "PTR", "TXT", "SPF", "CNAME")


@dataclass
class SuiteTest:
    scenario: int
    name: str
    host: str
    mailfrom: str
    helo: str
    results: tuple[str, ...]
    explanation: str | None
    spec: str
    strict: bool = True
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def only_permerror(self) -> bool:
        return self.results == ("permerror",)

    @property
    def domain(self) -> str:
        """The domain check_host() starts from (RFC 7208 2.4: postmaster@HELO if no sender)."""
        return (self.mailfrom.rpartition("@")[2] if "@" in self.mailfrom else self.helo).lower()


@dataclass
class Scenario:
    index: int
    description: str
    zonedata: dict[str, list[Any]]
    tests: list[SuiteTest]


@cache
def scenarios() -> tuple[Scenario, ...]:
    import yaml

    out = []
    with SUITE.open("rb") as fh:
        for index, doc in enumerate(yaml.safe_load_all(fh)):
            tests = []
            for name, t in doc["tests"].items():
                result = t["result"]
                results = tuple(result) if isinstance(result, list) else (result,)
                tests.append(SuiteTest(index, name, str(t["host"]), str(t.get("mailfrom", "")),
                                       str(t.get("helo", "")), results, t.get("explanation"),
                                       str(t.get("spec", "")), bool(t.get("strict", True)), t))
            out.append(Scenario(index, doc["description"], doc["zonedata"], tests))
    return tuple(out)


def all_tests() -> list[SuiteTest]:
    return [t for s in scenarios() for t in s.tests]


def _strings(value: Any) -> list[bytes]:
    """TXT character-strings: one YAML string may exceed 255 octets (RFC 1035 3.3.14)."""
    parts = [value] if isinstance(value, str) else list(value)
    out: list[bytes] = []
    for part in parts:
        raw = str(part).encode("utf-8")
        out += [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
    return out


def _name(text: str) -> dns.name.Name:
    return dns.name.from_text(str(text), dns.name.root)


def _rdata(rtype: str, value: Any) -> dns.rdata.Rdata | None:
    if rtype in ("TXT", "SPF"):
        strings = _strings(value)
        if not strings:
            return None  # "SPF: [ ]": a record with no strings cannot be sent
        cls = dns.rdtypes.ANY.TXT.TXT if rtype == "TXT" else dns.rdtypes.ANY.SPF.SPF
        return cls(IN, dns.rdatatype.from_text(rtype), strings)
    if rtype == "MX":
        pref, host = value
        return dns.rdtypes.ANY.MX.MX(IN, dns.rdatatype.MX, int(pref), _name(host))
    if rtype == "PTR":
        return dns.rdtypes.ANY.PTR.PTR(IN, dns.rdatatype.PTR, _name(value))
    if rtype == "CNAME":
        return dns.rdtypes.ANY.CNAME.CNAME(IN, dns.rdatatype.CNAME, _name(value))
    return dns.rdata.from_text(IN, rtype, str(value))


def build_zone(scenario: Scenario) -> tuple[dns.zone.Zone, dict[tuple[str, str], str]]:
    """The scenario as one root zone, and the fixture behaviours for its TIMEOUT markers."""
    zone = dns.zone.Zone(dns.name.root, relativize=False)
    timeouts: dict[tuple[str, str], str] = {}
    for owner, entries in scenario.zonedata.items():
        name = _name(owner)
        lists_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
        listed: set[str] = set()  # types answered before a TIMEOUT marker
        records: list[tuple[str, Any]] = []
        for entry in entries:
            if entry == "TIMEOUT":
                # Generated TXT copies come after the marker in pyspf's driver: not reached.
                timeouts.update({(name.to_text().lower(), rtype): "timeout"
                                 for rtype in ASKED if rtype not in listed})
                break
            for rtype, value in entry.items():
                if value not in ("NONE", ["NONE"]):
                    records.append((rtype, value))
                    listed.add(rtype)
        if not lists_txt:
            records += [("TXT", value) for rtype, value in records if rtype == "SPF"]
        node = zone.find_node(name, create=True)
        for rtype, value in records:
            rdata = _rdata(rtype, value)
            if rdata is None:
                continue
            rds = node.find_rdataset(IN, rdata.rdtype, create=True)
            rds.add(rdata, 300)
    return zone, timeouts


def serve(server: DnsServer, test: SuiteTest) -> None:
    """Serve only this test's scenario on the fixture (names repeat across scenarios)."""
    zone, timeouts = build_zone(scenarios()[test.scenario])
    server.zones = {dns.name.root: zone}
    server.behaviour = dict(timeouts)
