"""check-domain under hostile DNS and the MTA-STS policy fetch: failures are errors with the
name and reason, never "missing"; every lookup (MX, MTA-STS host) goes to --nameserver."""

from __future__ import annotations

import json
from typing import Any

import pytest

from smtpcli.cli.main import main
from tests.servers import cd_mta_sts

mta_sts_server = cd_mta_sts.mta_sts_server  # the fixture, used by name

ZONES = ["cd-clean.test.zone", "cd-ext.test.zone", "cd-reverse.zone", "cd-dnsbl.test.zone",
         "cd-spf.test.zone", "cd-misc.test.zone"]


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    with pytest.raises(SystemExit) as exc:
        main(["check-domain", "--json", *args])
    out, _ = capsys.readouterr()
    return int(exc.value.code or 0), json.loads(out)


def found(doc: dict[str, Any], finding_id: str) -> list[dict[str, Any]]:
    return [f for f in doc["findings"] if f["id"] == finding_id]


@pytest.fixture
def dns(dns_server):
    return dns_server(zone_files=ZONES, ad=("cd-clean.test",))


def base(dns, timeout: str = "2") -> list[str]:
    return ["--nameserver", dns.nameserver, "--timeout", timeout, "--dns-retries", "0",
            "--no-dnsbl"]


def test_servfail_is_lookup_failed_not_missing(capsys, dns) -> None:
    dns.behaviour["_dmarc.cd-clean.test"] = "servfail"
    dns.behaviour[("cd-clean.test", "TXT")] = "servfail"
    code, doc = run_json(capsys, "cd-clean.test", *base(dns), "--only", "spf", "--only", "dmarc")
    failed = found(doc, "dns.lookup-failed")
    assert {f["data"]["name"] for f in failed} == {"cd-clean.test", "_dmarc.cd-clean.test"}
    assert all(f["status"] == "error" and f["data"]["reason"] for f in failed)
    assert not found(doc, "spf.missing") and not found(doc, "dmarc.missing")
    assert code == 3


def test_timeout_is_lookup_failed_and_bounded(capsys, dns) -> None:
    dns.behaviour[("cd-clean.test", "MX")] = "timeout"
    code, doc = run_json(capsys, "cd-clean.test", *base(dns, "0.5"), "--only", "mx")
    failed = found(doc, "dns.lookup-failed")
    assert failed and "timed out" in failed[0]["data"]["reason"]
    assert not found(doc, "mx.missing") and code == 3


def test_refused_and_garbage(capsys, dns) -> None:
    dns.behaviour["_spf.cd-ext.test"] = "refused"
    dns.behaviour["_smtp._tls.cd-clean.test"] = "garbage"
    code, doc = run_json(capsys, "cd-clean.test", *base(dns, "0.5"), "--only", "spf",
                         "--only", "tlsrpt")
    names = {f["data"]["name"] for f in found(doc, "dns.lookup-failed")}
    assert names == {"_spf.cd-ext.test", "_smtp._tls.cd-clean.test"}
    assert not found(doc, "spf.include-missing") and not found(doc, "tlsrpt.missing")
    assert code == 3


def test_truncated_answers_fall_back_to_tcp(capsys, dns) -> None:
    dns.behaviour["*"] = "truncate"
    code, doc = run_json(capsys, "cd-clean.test", *base(dns), "--only", "spf", "--only", "mx")
    assert not found(doc, "dns.lookup-failed"), doc["findings"]
    assert code == 0
    assert any(q.transport == "tcp" for q in dns.queries)


def test_four_kilobyte_txt(capsys, dns) -> None:
    code, doc = run_json(capsys, "big.cd-misc.test", *base(dns), "--only", "spf")
    record = doc["facts"]["families"]["spf"]["records"][0]
    assert len(record) > 4000
    assert found(doc, "spf.too-long")[0]["status"] == "warn"
    assert any(q.transport == "tcp" and q.qname.startswith("big.") for q in dns.queries)


def test_cname_loop_is_not_missing(capsys, dns) -> None:
    code, doc = run_json(capsys, "cnameloop.cd-misc.test", *base(dns), "--only", "dmarc")
    # A looping alias is a broken lookup, or at best no record; never a crash or a hang.
    assert found(doc, "dns.lookup-failed") or found(doc, "dmarc.missing")
    assert code in (1, 3)


def test_include_loop(capsys, dns) -> None:
    code, doc = run_json(capsys, "loopa.cd-spf.test", *base(dns), "--only", "spf")
    loop = found(doc, "spf.loop")
    assert loop and "loopa.cd-spf.test -> loopb.cd-spf.test -> loopa.cd-spf.test" in loop[0]["summary"]
    assert code == 1


def test_one_failing_domain_does_not_stop_others(capsys, dns) -> None:
    dns.behaviour["*"] = "servfail"
    with pytest.raises(SystemExit) as exc:
        main(["check-domain", "--json", "cd-clean.test", "allpass.cd-spf.test",
              *base(dns), "--only", "spf"])
    out, _ = capsys.readouterr()
    docs = [json.loads(line) for line in out.splitlines()]
    assert len(docs) == 2 and all(d["status"] == "error" for d in docs)
    assert exc.value.code == 3


# --- MTA-STS ---------------------------------------------------------------------------------

def test_mta_sts_and_mx_use_the_configured_nameserver(capsys, dns, mta_sts_server) -> None:
    code, doc = run_json(capsys, "cd-clean.test", *base(dns), "--only", "mta-sts",
                         "--only", "mx", "--cafile", mta_sts_server.ca)
    asked = {(q.qname, q.rdtype) for q in dns.queries}
    assert ("mta-sts.cd-clean.test.", "A") in asked
    assert ("cd-clean.test.", "MX") in asked
    assert ("mx1.cd-clean.test.", "A") in asked
    assert mta_sts_server.requests == ["mta-sts.cd-clean.test/.well-known/mta-sts.txt"]
    assert found(doc, "mta-sts.ok") and code == 0


@pytest.mark.parametrize(("sub", "finding", "status"), [
    ("sts-testing", "mta-sts.testing", "warn"),
    ("sts-uncovered", "mta-sts.mx-not-covered", "fail"),
    ("sts-badpolicy", "mta-sts.syntax", "fail"),
    ("sts-syntax", "mta-sts.syntax", "fail"),
    ("sts-unreachable", "mta-sts.policy-unreachable", "fail"),
    ("listed", "mta-sts.missing", "info"),
])
def test_mta_sts_findings(capsys, dns, mta_sts_server, sub: str, finding: str,
                          status: str) -> None:
    _, doc = run_json(capsys, f"{sub}.cd-misc.test", *base(dns), "--only", "mta-sts",
                      "--cafile", mta_sts_server.ca)
    assert {f["status"] for f in found(doc, finding)} == {status}, doc["findings"]


def test_mta_sts_certificate_must_verify(capsys, dns, mta_sts_server, tls_certs) -> None:
    # Without --cafile the system store does not know the test CA: the fetch must fail.
    _, doc = run_json(capsys, "sts-ok.cd-misc.test", *base(dns), "--only", "mta-sts")
    unreachable = found(doc, "mta-sts.policy-unreachable")
    assert unreachable and "certificate" in unreachable[0]["summary"]
    _, doc = run_json(capsys, "sts-ok.cd-misc.test", *base(dns), "--only", "mta-sts",
                      "--cafile", mta_sts_server.ca)
    assert found(doc, "mta-sts.ok")


def test_unreachable_nameserver_is_one_error_not_a_screenful(capsys) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never answers
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        code, doc = run_json(capsys, "cd-clean.test", "--nameserver", f"127.0.0.1:{port}",
                             "--timeout", "0.3", "--dns-retries", "0", "--no-dnsbl")
    [finding] = doc["findings"]
    assert finding["id"] == "dns.lookup-failed" and finding["status"] == "error"
    assert finding["summary"].startswith("every DNS lookup for cd-clean.test failed (")
    assert "timed out" in finding["summary"]
    assert len(finding["data"]["failures"]) >= 5  # every failed name is still in the data
    assert code == 3
