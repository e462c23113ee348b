"""check-domain against the loopback DNS fixture: a clean domain, one case per finding id,
exit codes, many domains, --record, --zone-file, --ip."""

from __future__ import annotations

import json
from typing import Any

import pytest

from smtpcli.cli.main import main
from tests.servers import cd_mta_sts

mta_sts_server = cd_mta_sts.mta_sts_server  # the fixture, used by name

ALL_ZONES = ["cd-clean.test.zone", "cd-ext.test.zone", "cd-reverse.zone", "cd-dnsbl.test.zone",
             "cd-mx.test.zone", "cd-spf.test.zone", "cd-dmarc.test.zone", "cd-dkim.test.zone",
             "cd-misc.test.zone"]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(["check-domain", *args])
    out, err = capsys.readouterr()
    code = exc.value.code
    return int(code if isinstance(code, int) else 0), out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run(capsys, "--json", *args)
    return code, json.loads(out)


def ids(doc: dict[str, Any], status: str | None = None) -> set[str]:
    return {f["id"] for f in doc["findings"] if status is None or f["status"] == status}


def statuses(doc: dict[str, Any], finding_id: str) -> set[str]:
    return {f["status"] for f in doc["findings"] if f["id"] == finding_id}


@pytest.fixture
def dns(dns_server):
    return dns_server(zone_files=ALL_ZONES, ad=("cd-clean.test",))


def base(dns) -> list[str]:
    return ["--nameserver", dns.nameserver, "--timeout", "2", "--dns-retries", "0"]


# --- the clean domain ------------------------------------------------------------------------

def test_clean_domain_has_no_problems(capsys, dns, mta_sts_server) -> None:
    code, doc = run_json(capsys, "cd-clean.test", *base(dns), "--dnsbl", "cd-dnsbl.test",
                         "--cafile", mta_sts_server.ca, "--no-common-selectors",
                         "--dkim-selector", "selector1")
    bad = [f for f in doc["findings"] if f["status"] in ("warn", "fail", "error")]
    assert bad == [], bad
    assert code == 0 and doc["status"] in ("ok", "info")
    assert {"mx.ok", "spf.lookups", "dmarc.ok", "dkim.key", "mta-sts.ok", "tlsrpt.ok",
            "bimi.ok", "dnssec.signed", "dnsbl.clean"} <= ids(doc, "ok")
    fams = doc["facts"]["families"]
    assert fams["spf"]["lookups"] == 2  # mx + include
    assert fams["mx"]["hosts"][0]["rdns"][0]["fcrdns"] is True
    assert fams["mta-sts"]["policy"]["mode"] == "enforce"


def test_clean_domain_text_groups_by_family(capsys, dns) -> None:
    code, out, _ = run(capsys, "cd-clean.test", *base(dns), "--no-dnsbl", "--only", "spf",
                       "--only", "mx")
    assert code == 0
    assert "record: v=spf1 mx include:_spf.cd-ext.test -all" in out
    assert "include _spf.cd-ext.test: 0 lookup(s)" in out
    assert out.index("MX") < out.index("SPF")


# --- one case per finding --------------------------------------------------------------------

MX_CASES = [
    ("missing", "mx.missing", "fail"), ("null", "mx.null", "info"),
    ("nullmixed", "mx.null-mixed", "fail"), ("cname", "mx.cname", "fail"),
    ("literal", "mx.ip-literal", "fail"), ("noaddr", "mx.no-address", "fail"),
    ("dup", "mx.duplicate", "warn"), ("single", "mx.single", "info"),
    ("noptr", "mx.ptr-missing", "warn"), ("fcrdns", "mx.fcrdns-mismatch", "warn"),
]


@pytest.mark.parametrize(("sub", "finding", "status"), MX_CASES)
def test_mx_findings(capsys, dns, sub: str, finding: str, status: str) -> None:
    _, doc = run_json(capsys, f"{sub}.cd-mx.test", *base(dns), "--only", "mx")
    assert statuses(doc, finding) == {status}, doc["findings"]
    assert "dns.lookup-failed" not in ids(doc)


SPF_CASES = [
    ("missing", "spf.missing", "fail"), ("multiple", "spf.multiple", "fail"),
    ("syntax", "spf.syntax", "fail"), ("toomany", "spf.too-many-lookups", "fail"),
    ("void", "spf.void-lookups", "fail"), ("ptr", "spf.ptr", "warn"),
    ("allpass", "spf.all-pass", "fail"), ("neutral", "spf.all-neutral", "warn"),
    ("includemissing", "spf.include-missing", "fail"),
    ("redirectmissing", "spf.redirect-missing", "fail"),
    ("loopa", "spf.loop", "fail"), ("toolong", "spf.too-long", "warn"),
    ("type99", "spf.type99", "warn"),
]


@pytest.mark.parametrize(("sub", "finding", "status"), SPF_CASES)
def test_spf_findings(capsys, dns, sub: str, finding: str, status: str) -> None:
    _, doc = run_json(capsys, f"{sub}.cd-spf.test", *base(dns), "--only", "spf")
    assert statuses(doc, finding) == {status}, doc["findings"]


def test_spf_lookup_tree_counts_nested_includes(capsys, dns) -> None:
    _, doc = run_json(capsys, "toomany.cd-spf.test", *base(dns), "--only", "spf")
    tree = doc["facts"]["families"]["spf"]["tree"]
    # 6 includes at the top, 4 nested includes, 1 a: term in i5.
    assert tree["lookups"] == 6 and tree["total"] == 11
    i5 = next(c for c in tree["children"] if c["domain"] == "i5.cd-spf.test")
    assert i5["lookups"] == 1
    finding = next(f for f in doc["findings"] if f["id"] == "spf.too-many-lookups")
    assert finding["data"]["lookups"] == 11


def test_spf_record_lint_resolves_includes(capsys, dns) -> None:
    code, doc = run_json(capsys, "sub.cd-spf.test", *base(dns), "--only", "spf",
                         "--record", "v=spf1 include:toomany.cd-spf.test -all")
    assert doc["facts"]["families"]["spf"]["lookups"] == 12
    assert statuses(doc, "spf.too-many-lookups") == {"fail"}
    assert code == 1


def test_spf_void_terms_named(capsys, dns) -> None:
    _, doc = run_json(capsys, "void.cd-spf.test", *base(dns), "--only", "spf")
    finding = next(f for f in doc["findings"] if f["id"] == "spf.void-lookups")
    assert "a:v1.cd-spf.test" in finding["summary"] and "exists:v3.cd-spf.test" in finding["summary"]


def test_spf_all_pass_suggests_fix(capsys, dns) -> None:
    _, doc = run_json(capsys, "allpass.cd-spf.test", *base(dns), "--only", "spf")
    finding = next(f for f in doc["findings"] if f["id"] == "spf.all-pass")
    assert finding["fix"] == "v=spf1 mx -all"


DMARC_CASES = [
    ("missing", "dmarc.missing", "fail"), ("multiple", "dmarc.multiple", "fail"),
    ("syntax", "dmarc.syntax", "fail"), ("none", "dmarc.policy-none", "warn"),
    ("subweaker", "dmarc.subdomain-weaker", "warn"), ("pct", "dmarc.pct-partial", "warn"),
    ("norua", "dmarc.no-rua", "info"), ("ruainvalid", "dmarc.rua-invalid", "fail"),
    ("unauth", "dmarc.rua-unauthorized", "warn"),
]


@pytest.mark.parametrize(("sub", "finding", "status"), DMARC_CASES)
def test_dmarc_findings(capsys, dns, sub: str, finding: str, status: str) -> None:
    _, doc = run_json(capsys, f"{sub}.cd-dmarc.test", *base(dns), "--only", "dmarc")
    assert statuses(doc, finding) == {status}, doc["findings"]


def test_dmarc_falls_back_to_organisational_domain(capsys, dns) -> None:
    _, doc = run_json(capsys, "mx1.cd-clean.test", *base(dns), "--only", "dmarc")
    assert doc["facts"]["families"]["dmarc"]["name"] == "_dmarc.cd-clean.test"
    assert "dmarc.missing" not in ids(doc)


DKIM_CASES = [
    ("absent", "dkim.not-found", "fail"), ("weak", "dkim.key-weak", "warn"),
    ("testing", "dkim.testing", "warn"), ("revoked", "dkim.revoked", "warn"),
    ("syntax", "dkim.syntax", "fail"), ("sha1", "dkim.sha1", "fail"), ("ed", "dkim.key", "ok"),
    ("good", "dkim.key", "ok"),
]


@pytest.mark.parametrize(("selector", "finding", "status"), DKIM_CASES)
def test_dkim_findings(capsys, dns, selector: str, finding: str, status: str) -> None:
    _, doc = run_json(capsys, "cd-dkim.test", *base(dns), "--only", "dkim",
                      "--no-common-selectors", "--dkim-selector", selector)
    assert statuses(doc, finding) == {status}, doc["findings"]


def test_dkim_common_selectors_probed_concurrently(capsys, dns) -> None:
    _, doc = run_json(capsys, "cd-clean.test", *base(dns), "--only", "dkim")
    keys = doc["facts"]["families"]["dkim"]["keys"]
    assert [k["selector"] for k in keys] == ["selector1"]
    assert statuses(doc, "dkim.key") == {"ok"}


def test_dkim_none_at_common_selectors_is_a_warning(capsys, dns) -> None:
    _, doc = run_json(capsys, "cd-dmarc.test", *base(dns), "--only", "dkim")
    assert statuses(doc, "dkim.not-found") == {"warn"}


def test_tlsrpt_bimi_dnssec_dnsbl(capsys, dns) -> None:
    _, doc = run_json(capsys, "tlsrpt-bad.cd-misc.test", *base(dns), "--only", "tlsrpt")
    assert statuses(doc, "tlsrpt.syntax") == {"fail"}
    _, doc = run_json(capsys, "cd-dkim.test", *base(dns), "--only", "tlsrpt", "--only", "dnssec")
    assert statuses(doc, "tlsrpt.missing") == {"info"}
    assert statuses(doc, "dnssec.unsigned") == {"warn"}
    _, doc = run_json(capsys, "bimi-bad.cd-misc.test", *base(dns), "--only", "bimi")
    assert statuses(doc, "bimi.syntax") == {"fail"}
    _, doc = run_json(capsys, "bimi-weak.cd-misc.test", *base(dns), "--only", "bimi")
    assert statuses(doc, "bimi.dmarc-not-enforced") == {"fail"}
    code, doc = run_json(capsys, "listed.cd-misc.test", *base(dns), "--only", "dnsbl",
                         "--dnsbl", "cd-dnsbl.test")
    assert statuses(doc, "dnsbl.listed") == {"fail"} and code == 1
    assert doc["findings"][0]["data"]["zone"] == "cd-dnsbl.test"


def test_txt_cname_conflict(capsys, dns) -> None:
    import dns.rdataset as rdataset

    server = dns
    zone = server.zones[dns_name("cd-misc.test.")]
    node = zone.find_node(dns_name("conflict.cd-misc.test."))
    # Zone files cannot hold both (RFC 1034 3.6.2); add them to the served node directly.
    node.rdatasets.append(rdataset.from_text("IN", "TXT", 300, '"v=spf1 -all"'))
    node.rdatasets.append(rdataset.from_text("IN", "CNAME", 300, "mx1.cd-clean.test."))
    _, doc = run_json(capsys, "conflict.cd-misc.test", *base(server), "--only", "dns")
    assert statuses(doc, "dns.txt-cname-conflict") == {"fail"}


def dns_name(text: str) -> Any:
    import dns.name

    return dns.name.from_text(text)


# --- exit codes and status rules -------------------------------------------------------------

def test_nxdomain_domain_fails_clearly(capsys, dns) -> None:
    code, doc = run_json(capsys, "nope.cd-clean.test", *base(dns), "--no-dnsbl")
    assert code == 1
    assert ids(doc) == {"domain.nxdomain"} and doc["status"] == "fail"


def test_strict_fails_on_warnings(capsys, dns) -> None:
    args = ["neutral.cd-spf.test", *base(dns), "--only", "spf"]
    assert run(capsys, *args)[0] == 0
    assert run(capsys, *args, "--strict")[0] == 1


def test_error_outranks_fail(capsys, dns) -> None:
    dns.behaviour["_dmarc.allpass.cd-spf.test"] = "servfail"
    code, doc = run_json(capsys, "allpass.cd-spf.test", *base(dns), "--only", "spf",
                         "--only", "dmarc")
    assert statuses(doc, "spf.all-pass") == {"fail"}
    assert statuses(doc, "dns.lookup-failed") == {"error"}
    assert code == 3 and doc["exit_code"] == 3


# --- many domains, JUnit, --record, --zone-file, --ip ---------------------------------------

def test_many_domains_json_lines_and_summary(capsys, dns, tmp_path) -> None:
    listing = tmp_path / "domains.txt"
    listing.write_text("allpass.cd-spf.test\n# comment\nnope.cd-clean.test\n")
    junit = tmp_path / "out.xml"
    code, out, _ = run(capsys, "--json", "cd-clean.test", "--from-file", str(listing),
                       *base(dns), "--only", "spf", "--concurrency", "2", "--junit", str(junit))
    docs = [json.loads(line) for line in out.splitlines()]
    assert sorted(d["target"] for d in docs) == [
        "allpass.cd-spf.test", "cd-clean.test", "nope.cd-clean.test"]
    assert code == 1
    assert "spf.all-pass" in junit.read_text()
    code, out, _ = run(capsys, "cd-clean.test", "allpass.cd-spf.test", *base(dns),
                       "--only", "spf")
    table = out[out.index("DOMAIN"):]
    assert "allpass.cd-spf.test" in table and "spf.all-pass" in table
    assert "2 domains" in table


def test_record_lint_without_publishing(capsys, dns) -> None:
    code, doc = run_json(capsys, "--record", "v=spf1 ptr +all", *base(dns))
    assert {"spf.ptr", "spf.all-pass"} <= ids(doc) and code == 1
    code, doc = run_json(capsys, "--record", "v=DMARC1; p=none", *base(dns))
    assert {"dmarc.policy-none", "dmarc.no-rua"} <= ids(doc)
    code, doc = run_json(capsys, "--record", "v=DKIM1; k=rsa; p=", *base(dns))
    assert ids(doc) == {"dkim.revoked"}
    code, doc = run_json(capsys, "--record", "hello", *base(dns))
    assert ids(doc) == {"record.unknown"}


def test_zone_file_offline(capsys, tmp_path) -> None:
    zone = tmp_path / "offline.test.zone"
    zone.write_text('$ORIGIN offline.test.\n@ 300 IN SOA ns h 1 2 3 4 5\n'
                    '@ 300 IN MX 10 mx.offline.test.\nmx 300 IN A 192.0.2.1\n'
                    '@ 300 IN TXT "v=spf1 mx ?all"\n'
                    '_dmarc 300 IN TXT "v=DMARC1; p=reject; rua=mailto:d@offline.test"\n')
    code, doc = run_json(capsys, "--zone-file", str(zone), "--offline",
                         "--only", "mx", "--only", "spf", "--only", "dmarc")
    assert doc["target"] == "offline.test"
    assert statuses(doc, "spf.all-neutral") == {"warn"}
    assert statuses(doc, "mx.single") == {"info"}
    assert "dns.lookup-failed" not in ids(doc)


def test_zone_file_cname_outside_is_followed_over_dns_unless_offline(capsys, tmp_path,
                                                                     dns_server) -> None:
    provider = dns_server(zones={"provider.test.": (
        'dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:agg@provider.test"\n'
        'hosted.test._report._dmarc IN TXT "v=DMARC1"\n')})  # RFC 7489 7.1
    zone = tmp_path / "hosted.test.zone"
    zone.write_text('$ORIGIN hosted.test.\n@ 300 IN SOA ns h 1 2 3 4 5\n'
                    '_dmarc 300 IN CNAME dmarc.provider.test.\n')
    code, doc = run_json(capsys, "--zone-file", str(zone), "--nameserver", provider.nameserver,
                         "--only", "dmarc", "--timeout", "2")
    assert "dns.lookup-failed" not in ids(doc) and "dmarc.missing" not in ids(doc)
    assert doc["facts"]["families"]["dmarc"]["records"] == [
        "v=DMARC1; p=reject; rua=mailto:agg@provider.test"]
    assert "dmarc.rua-unauthorized" not in ids(doc)  # the provider authorised the report address
    assert any(q[0].lower().startswith("dmarc.provider.test") for q in provider.queries)
    code, doc = run_json(capsys, "--zone-file", str(zone), "--offline", "--only", "dmarc")
    [failed] = [f for f in doc["findings"] if f["id"] == "dns.lookup-failed"]
    assert "outside the zone file (--offline)" in failed["summary"] and code == 3


def test_ip_evaluation_with_pyspf_through_nameserver(capsys, dns) -> None:
    before = len(dns.queries)
    _, doc = run_json(capsys, "cd-clean.test", *base(dns), "--only", "spf",
                      "--ip", "127.0.0.10")
    result = next(f for f in doc["findings"] if f["id"] == "spf.result")
    assert result["status"] == "ok" and result["data"]["result"] == "pass"
    assert result["data"]["mechanism"] == "mx"
    assert len(dns.queries) > before
    _, doc = run_json(capsys, "cd-clean.test", *base(dns), "--only", "spf",
                      "--ip", "203.0.113.9", "--sender", "x@cd-clean.test")
    result = next(f for f in doc["findings"] if f["id"] == "spf.result")
    assert result["data"]["result"] == "fail" and result["status"] == "fail"
    _, doc = run_json(capsys, "cd-clean.test", *base(dns), "--only", "spf",
                      "--ip", "192.0.2.7")
    result = next(f for f in doc["findings"] if f["id"] == "spf.result")
    assert result["data"]["result"] == "pass"


def test_usage_errors(capsys) -> None:
    assert run(capsys)[0] == 2
    assert run(capsys, "x.test", "--only", "nonsense")[0] == 2
    assert run(capsys, "x.test", "--ip", "not-an-ip")[0] == 2
