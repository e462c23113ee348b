"""Broken messages never crash `inspect`: a corpus of malformed files plus hypothesis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smtpcli.dnsq.resolver import ResolverConfig
from smtpcli.inspection.authresults import parse_auth_results
from smtpcli.inspection.inspect import inspect_message
from smtpcli.inspection.parse import parse_message
from smtpcli.inspection.received import parse_received
from tests.servers.inspect_msgs import as_json, ids, run_cli, zone

__all__ = ["run_cli"]

CORPUS = Path(__file__).parent / "data" / "messages" / "malformed"
FILES = sorted(CORPUS.glob("*.eml"))


def test_corpus_is_big_enough() -> None:
    assert len(FILES) >= 20


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_corpus_offline(path: Path) -> None:
    report = inspect_message(path.read_bytes(), offline=True)
    json.dumps(report.to_dict())  # JSON-safe facts
    assert report.summary


@pytest.fixture
def b_test_dns(dns_server):
    return dns_server(zones={"b.test.": zone("b.test.", [
        'b.test. IN TXT "v=spf1 -all"', '_dmarc.b.test. IN TXT "v=DMARC1; p=reject"',
        's._domainkey.b.test. IN TXT "v=DKIM1; p=MIIBIjANBgkq"',
    ])})


def test_corpus_online_through_cli(b_test_dns, run_cli) -> None:
    """With lookups: every file ends in a report, never in an internal error.

    Names outside b.test are REFUSED by the fixture, so those lookups fail (exit 3, with a
    lookup-failed finding); everything else exits 0 or 1.
    """
    for path in FILES:
        code, out, err = run_cli("inspect", "--json", "--nameserver", b_test_dns.nameserver,
                                 "--ip", "192.0.2.1", "--timeout", "2", str(path))
        doc = as_json(out)
        assert "error" not in doc and "internal" not in err, (path.name, err)
        failed = [f for f in doc["findings"] if f["status"] == "error"]
        assert code == (3 if failed else 1 if doc["status"] == "fail" else 0), path.name
        assert all(f["id"].endswith(("lookup-failed", ".temperror")) for f in failed), failed


EXPECTED = {
    "01-empty.eml": "msg.empty",
    "03-no-headers-just-body.eml": "msg.no-headers",
    "04-bare-lf.eml": "msg.bare-lf",
    "05-mixed-endings.eml": "msg.bare-lf",
    "06-8bit-latin1-headers.eml": "msg.8bit-headers",
    "07-raw-utf8-headers.eml": "msg.utf8-headers",
    "08-missing-from-and-date.eml": "msg.missing-from",
    "09-two-from.eml": "msg.multiple-from",
    "10-from-without-domain.eml": "msg.invalid-from",
    "11-garbage-date.eml": "msg.invalid-date",
    "12-no-body-separator.eml": "msg.no-body",
    "13-continuation-first.eml": "msg.malformed-header",
    "14-header-line-without-colon.eml": "msg.malformed-header",
    "15-very-long-line.eml": "msg.line-too-long",
    "16-nul-bytes.eml": "msg.nul-bytes",
    "17-broken-dkim-signature.eml": "dkim.malformed",
    "18-dkim-signature-no-tags.eml": "dkim.malformed",
    "24-broken-mime.eml": "msg.mime-defects",
    "26-mbox-from-line.eml": "msg.mbox-from-line",
    "27-list-unsubscribe-odd.eml": "bulk.no-one-click",
}


@pytest.mark.parametrize("name,finding", sorted(EXPECTED.items()))
def test_corpus_findings(name: str, finding: str) -> None:
    report = inspect_message((CORPUS / name).read_bytes(), offline=True)
    assert finding in {f.id for f in report.findings}


def test_mixed_endings_warns_but_lf_only_is_info() -> None:
    lf = parse_message((CORPUS / "04-bare-lf.eml").read_bytes())
    mixed = parse_message((CORPUS / "05-mixed-endings.eml").read_bytes())
    assert [f.status.value for f in lf.findings if f.id == "msg.bare-lf"] == ["info"]
    assert [f.status.value for f in mixed.findings if f.id == "msg.bare-lf"] == ["warn"]
    assert lf.get("subject") == "lf" and lf.body == b"body\r\n"


def test_dkim_with_bad_tags_online(b_test_dns) -> None:
    """Signatures with duplicate tags or unknown algorithms are malformed, and the bad key
    record that one of them points at is reported as invalid, not as a crash."""
    config = ResolverConfig.from_options([b_test_dns.nameserver], 2, 0)
    for name in ("19-dkim-duplicate-tags.eml", "20-dkim-unknown-algorithm.eml"):
        report = inspect_message((CORPUS / name).read_bytes(), config=config)
        found = {f.id for f in report.findings}
        assert found & {"dkim.malformed", "dkim.key-invalid"}, (name, found)


# --- hypothesis ------------------------------------------------------------------------------

header_names = st.sampled_from([
    "From", "To", "Date", "Subject", "Message-ID", "Received", "DKIM-Signature", "ARC-Seal",
    "ARC-Message-Signature", "ARC-Authentication-Results", "Authentication-Results",
    "Return-Path", "List-Unsubscribe", "List-Unsubscribe-Post", "Content-Type", "X-Junk",
])
header_values = st.one_of(
    st.binary(max_size=120).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    st.text(max_size=120).map(lambda t: t.replace("\r", " ").replace("\n", " ").encode()),
    st.lists(st.sampled_from([
        "v=1", "a=rsa-sha256", "a=ed25519-sha256", "d=b.test", "s=s", "h=from:to", "bh=AA==",
        "b=AA==", "l=3", "l=-1", "l=x", "x=1", "t=9999999999", "c=relaxed/relaxed", "c=bogus",
        "i=1", "cv=none", "cv=pass", "from x", "by y", "with ESMTPS", "[192.0.2.1]",
        "Mon, 01 Jan 2024 10:00:00 +0000", "dkim=pass", "spf=fail", "header.d=b.test",
        "<https://u.test/x>", "List-Unsubscribe=One-Click", "(comment", ")",
    ]), max_size=12).map(lambda parts: "; ".join(parts).encode()),
)
header_lines = st.lists(st.tuples(header_names, header_values, st.booleans()), max_size=12)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header_lines, st.binary(max_size=200), st.sampled_from([b"\r\n", b"\n"]))
def test_hypothesis_headers_never_crash(lines, body, eol) -> None:
    raw = b""
    for name, value, folded in lines:
        if folded and len(value) > 10:
            value = value[:10] + eol + b"\t" + value[10:]
        raw += name.encode() + b": " + value + eol
    raw += eol + body
    report = inspect_message(raw, offline=True)
    json.dumps(report.to_dict())


@settings(deadline=None)
@given(st.text(max_size=300))
def test_hypothesis_received_and_authres_parsers(text: str) -> None:
    hop = parse_received(text)
    json.dumps(hop.to_dict())
    json.dumps(parse_auth_results(text).to_dict())
    json.dumps(parse_auth_results(text, "ARC-Authentication-Results").to_dict())


def test_received_formats() -> None:
    postfix = parse_received(
        "from mail-ed1-f41.google.com (mail-ed1-f41.google.com [209.85.208.41])\t(using TLSv1.3 "
        "with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)) (No client certificate requested) "
        "by mx.rcpt.test (Postfix) with ESMTPS id 4T2 for <bob@rcpt.test>; "
        "Tue, 2 Jan 2024 09:15:02 +0100 (CET)")
    assert postfix.from_ip == "209.85.208.41" and postfix.from_rdns == "mail-ed1-f41.google.com"
    assert postfix.by_host == "mx.rcpt.test" and postfix.with_proto == "ESMTPS"
    assert postfix.id == "4T2" and postfix.for_addr == "bob@rcpt.test" and postfix.tls
    assert postfix.time is not None and postfix.time.utcoffset().total_seconds() == 3600
    exim = parse_received(
        "from [2001:db8::1] (helo=client.example) by smtp.example with esmtpsa "
        "(TLS1.3) tls TLS_AES_256_GCM_SHA384 (Exim 4.96) id 1rK-000 ; Wed, 3 Jan 2024 10:00:00 +0000")
    assert exim.from_ip == "2001:db8::1" and exim.tls and exim.with_proto == "esmtpsa"
    gmail = parse_received(
        "by 2002:a05:6a10:a0d4:b0:4f2:1b3a:d3c5 with SMTP id i20csp123; "
        "Thu, 4 Jan 2024 01:02:03 -0800 (PST)")
    assert gmail.from_host is None and gmail.with_proto == "SMTP" and not gmail.tls
    assert parse_received("nonsense").time is None


def test_auth_results_parser() -> None:
    ar = parse_auth_results(
        'mx.google.com; dkim=pass header.i=@sender.test header.s=s1 header.b="AbCd1234"; '
        "spf=softfail (google.com: domain of transitioning x@y.test does not designate "
        "192.0.2.1 as permitted sender) smtp.mailfrom=x@y.test; "
        "dmarc=fail (p=REJECT sp=REJECT dis=QUARANTINE) header.from=sender.test")
    assert ar.authserv_id == "mx.google.com"
    assert [(r.method, r.result) for r in ar.results] == [
        ("dkim", "pass"), ("spf", "softfail"), ("dmarc", "fail")]
    assert ar.results[0].props["header.b"] == "AbCd1234"
    assert ar.results[1].props["smtp.mailfrom"] == "x@y.test"
    arc = parse_auth_results("i=2; lists.example; arc=pass; dkim=none",
                             "ARC-Authentication-Results")
    assert arc.instance == 2 and arc.authserv_id == "lists.example"


def test_corpus_exit_codes_via_cli(run_cli) -> None:
    code, out, _ = run_cli("inspect", "--json", "--offline", str(CORPUS / "09-two-from.eml"))
    assert code == 1 and "msg.multiple-from" in ids(as_json(out))
    code, out, _ = run_cli("inspect", "--json", "--offline", str(CORPUS / "04-bare-lf.eml"))
    assert code == 0


def test_entering_hop_skips_ip_literal_by_hosts() -> None:
    from smtpcli.inspection.parse import parse_message
    from smtpcli.inspection.received import analyse_received

    raw = (
        b"Received: by 2002:a05:6a10:a0d4:b0:4f2:1b3a:d3c5 with SMTP id i20csp1;"
        b" Thu, 4 Jan 2024 01:02:05 -0800 (PST)\r\n"
        b"Received: from mail.sender.test (mail.sender.test. [192.0.2.44]) by mx.google.com with"
        b" ESMTPS id x3si; Thu, 04 Jan 2024 01:02:04 -0800 (PST)\r\n"
        b"Received: from [10.0.0.9] by mail.sender.test with ESMTPSA; Thu, 04 Jan 2024 09:02:01"
        b" +0000\r\nFrom: a@sender.test\r\n\r\nb\r\n"
    )
    chain = analyse_received(parse_message(raw))
    assert chain.entering_ip == "192.0.2.44"
    assert chain.entering is not None and chain.entering.by_host == "mx.google.com"
    assert [h.delay for h in chain.hops] == [None, 3.0, 1.0]
