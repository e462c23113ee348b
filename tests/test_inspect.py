"""`smtpcli inspect` against messages signed in the test, keys served by the loopback DNS."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dkim

from smtpcli.dnsq.resolver import ResolverConfig
from smtpcli.inspection.inspect import inspect_message
from tests.servers.inspect_msgs import (
    OTHER_IP,
    SENDER_IP,
    as_json,
    default_received,
    ids,
    key,
    key_line,
    message,
    run_cli,
    sender_zone,
    sign,
    sign_after_return_path,
    signing_key,
    write,
    zone,
)

__all__ = ["run_cli"]


def _inspect(dns, raw: bytes, **kw):
    config = ResolverConfig.from_options([dns.nameserver], 2.0, 0)
    return inspect_message(raw, config=config, **kw)


def _ids(report) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in report.findings:
        out.setdefault(f.id, []).append(f)
    return out


def test_valid_signature_spf_and_dmarc_pass(dns_server, run_cli, tmp_path: Path) -> None:
    pair = key("rsa")
    dns = dns_server(zones={"sender.test.": sender_zone(key_line("s1", "sender.test", pair))})
    raw = sign_after_return_path(message(received=default_received()), pair)
    code, out, _ = run_cli("inspect", "--json", "--nameserver", dns.nameserver,
                           str(write(tmp_path, raw)))
    doc = as_json(out)
    found = ids(doc)
    assert code == 0, doc
    assert "dkim.pass" in found and "spf.pass" in found and "dmarc.pass" in found
    sig = doc["facts"]["dkim"][0]
    assert (sig["domain"], sig["selector"], sig["algorithm"]) == ("sender.test", "s1",
                                                                  "rsa-sha256")
    assert sig["key_bits"] == 1024 and sig["key_type"] == "rsa"
    assert sig["signed_headers"] == ["from", "to", "subject", "date", "message-id"]
    rec = doc["facts"]["received"]
    assert rec["entering_ip"] == SENDER_IP and rec["entering_helo"] == "out.sender.test"
    assert [h["delay_seconds"] for h in rec["hops"]] == [None, 4.0, 2.0]
    assert rec["total_transit_seconds"] == 6.0
    assert doc["facts"]["dmarc"]["dkim_aligned_domains"] == ["sender.test"]
    assert doc["facts"]["dmarc"]["spf_aligned"] is True
    assert doc["facts"]["spf"]["sender"] == "bounces@sender.test"


def test_modified_body_is_body_hash_mismatch(dns_server) -> None:
    pair = key("rsa")
    dns = dns_server(zones={"sender.test.": sender_zone(key_line("s1", "sender.test", pair))})
    raw = sign(message(), pair).replace(b"numbers are", b"numbers were")
    report = _inspect(dns, raw, ip=OTHER_IP)
    found = _ids(report)
    assert "dkim.body-hash-mismatch" in found and "dkim.pass" not in found
    assert "dmarc.fail" in found  # no passing DKIM, SPF fails for the other IP
    assert found["dmarc.fail"][0].data["disposition"] == "reject"


def test_modified_signed_header_is_signature_invalid(dns_server) -> None:
    pair = key("rsa")
    dns = dns_server(zones={"sender.test.": sender_zone(key_line("s1", "sender.test", pair))})
    raw = sign(message(), pair).replace(b"Subject: Quarterly report", b"Subject: Quarterly r3port")
    found = _ids(_inspect(dns, raw))
    assert "dkim.signature-invalid" in found
    assert "dkim.body-hash-mismatch" not in found


def test_unsigned_header_change_still_passes(dns_server) -> None:
    pair = key("rsa")
    dns = dns_server(zones={"sender.test.": sender_zone(key_line("s1", "sender.test", pair))})
    raw = sign(message(), pair).replace(b"MIME-Version: 1.0", b"MIME-Version: 1.0 (changed)")
    assert "dkim.pass" in _ids(_inspect(dns, raw))


def test_missing_key(dns_server, run_cli, tmp_path: Path) -> None:
    dns = dns_server(zones={"sender.test.": sender_zone()})
    raw = sign(message(), key("rsa"))
    code, out, _ = run_cli("inspect", "--json", "--nameserver", dns.nameserver, "--ip",
                           OTHER_IP, str(write(tmp_path, raw)))
    doc = as_json(out)
    assert code == 1
    finding = ids(doc)["dkim.key-not-found"][0]
    assert finding["subject"] == "s1._domainkey.sender.test"
    assert doc["facts"]["dkim"][0]["reason"] == "key-not-found"


def test_revoked_key(dns_server) -> None:
    dns = dns_server(zones={"sender.test.": sender_zone(
        key_line("s1", "sender.test", value="v=DKIM1; k=rsa; p="))})
    found = _ids(_inspect(dns, sign(message(), key("rsa"))))
    assert "dkim.key-revoked" in found


def test_wrong_key_published_is_signature_invalid(dns_server) -> None:
    dns = dns_server(zones={"sender.test.": sender_zone(
        key_line("s1", "sender.test", key("other")))})
    found = _ids(_inspect(dns, sign(message(), key("rsa"))))
    assert "dkim.signature-invalid" in found


def test_key_lookup_failure_is_error_not_absent(dns_server, run_cli, tmp_path: Path) -> None:
    pair = key("rsa")
    dns = dns_server(zones={"sender.test.": sender_zone(key_line("s1", "sender.test", pair))})
    dns.behaviour["s1._domainkey.sender.test"] = "servfail"
    raw = sign(message(received=default_received()), pair)
    code, out, _ = run_cli("inspect", "--json", "--nameserver", dns.nameserver,
                           "--dns-retries", "0", "--timeout", "2", str(write(tmp_path, raw)))
    doc = as_json(out)
    assert code == 3
    found = ids(doc)
    assert "dkim.key-lookup-failed" in found and "dkim.key-not-found" not in found


def test_ed25519_signature(dns_server) -> None:
    pair = key("ed", "ed25519")
    dns = dns_server(zones={"sender.test.": sender_zone(key_line("ed", "sender.test", pair))})
    report = _inspect(dns, sign(message(), pair, selector="ed"))
    found = _ids(report)
    assert "dkim.pass" in found, report.to_dict()
    sig = report.facts["dkim"][0]
    assert sig["algorithm"] == "ed25519-sha256" and sig["key_type"] == "ed25519"
    assert sig["key_bits"] == 256


def test_rsa_and_ed25519_dual_signature(dns_server) -> None:
    rsa_pair, ed_pair = key("rsa"), key("ed", "ed25519")
    dns = dns_server(zones={"sender.test.": sender_zone(
        key_line("s1", "sender.test", rsa_pair), key_line("ed", "sender.test", ed_pair))})
    raw = sign(sign(message(), rsa_pair), ed_pair, selector="ed")
    report = _inspect(dns, raw)
    assert [s["result"] for s in report.facts["dkim"]] == ["pass", "pass"]
    assert [s["selector"] for s in report.facts["dkim"]] == ["ed", "s1"]


def test_body_length_limit_with_appended_text(dns_server) -> None:
    pair = key("rsa")
    dns = dns_server(zones={"sender.test.": sender_zone(key_line("s1", "sender.test", pair))})
    raw = sign(message(), pair, length=True) + b"-- \r\nAppended by a list: buy now!\r\n"
    report = _inspect(dns, raw)
    found = _ids(report)
    assert "dkim.pass" in found
    limit = found["dkim.body-length-limit"][0]
    assert limit.data["unsigned_bytes"] == len(b"-- \r\nAppended by a list: buy now!\r\n")
    assert report.facts["dkim"][0]["body_length"] is not None


def test_arc_sealed_forwarding(dns_server) -> None:
    """A list changes the body (DKIM breaks) and ARC-seals what it saw (ARC passes)."""
    sender, lst = key("rsa"), key("list")
    dns = dns_server(zones={
        "sender.test.": sender_zone(key_line("s1", "sender.test", sender)),
        "list.test.": zone("list.test.", [key_line("arc", "list.test", lst),
                                          'list.test. IN TXT "v=spf1 ip4:203.0.113.5 -all"']),
    })
    original = sign(message(), sender)
    # The list's MTA verified the original on receipt and recorded it.
    received_by_list = (
        b"Authentication-Results: lists.list.test; dkim=pass header.d=sender.test "
        b"header.s=s1; spf=pass smtp.mailfrom=sender.test; dmarc=pass header.from=sender.test\r\n"
        + original
    )
    modified = received_by_list.replace(b"attached.\r\n", b"attached.\r\n--\r\nlist footer\r\n")
    priv, _ = signing_key(lst)
    arc_headers = dkim.arc_sign(modified, b"arc", b"list.test", priv, b"lists.list.test",
                                include_headers=[b"from", b"to", b"subject", b"date"])
    forwarded = b"".join(arc_headers) + modified
    report = _inspect(dns, forwarded, ip="203.0.113.5", sender="list-bounces@list.test")
    found = _ids(report)
    assert "dkim.body-hash-mismatch" in found
    assert "arc.pass" in found, report.facts["arc"]
    assert report.facts["arc"]["instances"][0]["as_domain"] == "list.test"
    # The A-R the list recorded says dkim=pass: the message changed after that hop.
    assert "authres.disagreement" in found
    assert found["authres.disagreement"][0].data["method"] in ("dkim", "dmarc")


def test_arc_chain_tampered_fails(dns_server) -> None:
    sender, lst = key("rsa"), key("list")
    dns = dns_server(zones={
        "sender.test.": sender_zone(key_line("s1", "sender.test", sender)),
        "list.test.": zone("list.test.", [key_line("arc", "list.test", lst)]),
    })
    base = b"Authentication-Results: lists.list.test; dkim=pass header.d=sender.test\r\n" + sign(
        message(), sender)
    priv, _ = signing_key(lst)
    sealed = b"".join(dkim.arc_sign(base, b"arc", b"list.test", priv, b"lists.list.test",
                                    include_headers=[b"from", b"subject"])) + base
    tampered = sealed.replace(b"Subject: Quarterly report", b"Subject: Changed later")
    assert "arc.fail" in _ids(_inspect(dns, tampered))


def test_received_chain_with_hop_from_the_past() -> None:
    received = [
        "from mx1.rcpt.test (mx1.rcpt.test [10.0.0.5]) by store.rcpt.test with LMTP; "
        "Mon, 01 Jan 2024 10:00:09 +0000",
        # This hop's clock is two hours behind the previous one.
        f"from out.sender.test (out.sender.test [{SENDER_IP}]) by mx1.rcpt.test with ESMTPS; "
        "Mon, 01 Jan 2024 08:00:05 +0000",
        "from laptop ([10.1.1.2]) by out.sender.test with ESMTPSA; Mon, 01 Jan 2024 10:00:01 +0000",
        "by localhost (Postfix, from userid 1000) id 99; no date here",
    ]
    report = inspect_message(message(received=received), offline=True,
                             now=datetime(2024, 1, 1, 11, tzinfo=UTC))
    found = _ids(report)
    skew = found["received.clock-skew"][0]
    assert skew.data["hop"] == 3 and skew.data["delay_seconds"] == -7196.0
    assert "received.no-timestamp" in found
    assert "received.long-delay" in found  # hop 4 looks two hours late after the skew
    hops = report.facts["received"]["hops"]
    assert [h["tls"] for h in hops] == [False, True, True, False]
    assert report.facts["received"]["entering_ip"] == SENDER_IP


def test_future_timestamp() -> None:
    received = ["from a.test ([192.0.2.1]) by mx.rcpt.test with SMTP; Fri, 01 Jan 2100 00:00:00 +0000"]
    found = _ids(inspect_message(message(received=received), offline=True))
    assert "received.future-timestamp" in found


def test_spf_fail_for_entering_ip_but_dkim_aligned_passes_dmarc(dns_server) -> None:
    pair = key("rsa")
    dns = dns_server(zones={"sender.test.": sender_zone(key_line("s1", "sender.test", pair))})
    raw = sign_after_return_path(message(received=default_received(OTHER_IP)), pair)
    report = _inspect(dns, raw)
    found = _ids(report)
    assert "spf.fail" in found and "dmarc.pass" in found
    assert report.facts["spf"]["ip"] == OTHER_IP


def test_dmarc_fail_when_signed_by_third_party(dns_server, run_cli, tmp_path: Path) -> None:
    esp = key("esp")
    dns = dns_server(zones={
        "sender.test.": sender_zone(),
        "esp.test.": zone("esp.test.", [key_line("s1", "esp.test", esp),
                                        f'esp.test. IN TXT "v=spf1 ip4:{OTHER_IP} -all"']),
    })
    raw = sign(message(received=default_received(OTHER_IP), return_path="<b@esp.test>"),
               esp, domain="esp.test")
    code, out, _ = run_cli("inspect", "--json", "--nameserver", dns.nameserver,
                           str(write(tmp_path, raw)))
    doc = as_json(out)
    found = ids(doc)
    assert code == 1
    assert "dkim.pass" in found and "spf.pass" in found and "dmarc.fail" in found
    assert "bulk.from-not-aligned" in found
    assert doc["facts"]["dmarc"]["disposition"] == "reject"


def test_dmarc_strict_vs_relaxed_alignment(dns_server) -> None:
    pair = key("rsa")
    raw = sign(message(from_="Alice <alice@news.sender.test>"), pair)
    strict = dns_server(zones={"sender.test.": sender_zone(
        key_line("s1", "sender.test", pair), dmarc="v=DMARC1; p=quarantine; adkim=s")})
    found = _ids(_inspect(strict, raw, ip=OTHER_IP))
    assert "dmarc.fail" in found and found["dmarc.fail"][0].data["disposition"] == "quarantine"
    relaxed = dns_server(zones={"sender.test.": sender_zone(
        key_line("s1", "sender.test", pair), dmarc="v=DMARC1; p=quarantine; sp=none")})
    report = _inspect(relaxed, raw, ip=OTHER_IP)
    assert "dmarc.pass" in _ids(report)
    assert report.facts["dmarc"]["found_at"] == "_dmarc.sender.test"
    assert report.facts["dmarc"]["policy"] == "none"  # sp= applies to the subdomain


def test_no_dmarc_policy(dns_server) -> None:
    pair = key("rsa")
    dns = dns_server(zones={"sender.test.": zone("sender.test.", [
        key_line("s1", "sender.test", pair)])})
    found = _ids(_inspect(dns, sign(message(), pair)))
    assert "dmarc.no-policy" in found and "dmarc.fail" not in found


def test_dmarc_lookup_failure(dns_server) -> None:
    pair = key("rsa")
    dns = dns_server(zones={"sender.test.": sender_zone(key_line("s1", "sender.test", pair))})
    dns.behaviour["_dmarc.sender.test"] = "timeout"
    config = ResolverConfig.from_options([dns.nameserver], 0.5, 0)
    report = inspect_message(sign(message(), pair), config=config)
    found = _ids(report)
    assert "dmarc.lookup-failed" in found and "dmarc.no-policy" not in found
    assert report.facts["dmarc"]["result"] == "temperror"


def test_authentication_results_disagreement(dns_server) -> None:
    pair = key("rsa")
    dns = dns_server(zones={"sender.test.": sender_zone(key_line("s1", "sender.test", pair))})
    raw = (b"Authentication-Results: mx1.rcpt.test; dkim=fail (bad sig) header.d=sender.test; "
           b"spf=pass smtp.mailfrom=bounces@sender.test\r\n"
           + sign_after_return_path(message(received=default_received()), pair))
    report = _inspect(dns, raw)
    dis = _ids(report)["authres.disagreement"]
    assert len(dis) == 1 and dis[0].data == {"method": "dkim", "theirs": "fail", "ours": "pass"}
    ar = report.facts["authentication_results"][0]
    assert ar["authserv_id"] == "mx1.rcpt.test" and ar["results"][1]["method"] == "spf"


def test_authentication_results_agree(dns_server) -> None:
    pair = key("rsa")
    dns = dns_server(zones={"sender.test.": sender_zone(key_line("s1", "sender.test", pair))})
    raw = (b"Authentication-Results: mx1.rcpt.test; dkim=pass header.d=sender.test; spf=pass; "
           b"dmarc=pass header.from=sender.test\r\n"
           + sign_after_return_path(message(received=default_received()), pair))
    found = _ids(_inspect(dns, raw))
    assert "authres.agree" in found and "authres.disagreement" not in found


def test_bulk_one_click_signed(dns_server) -> None:
    pair = key("rsa")
    dns = dns_server(zones={"sender.test.": sender_zone(key_line("s1", "sender.test", pair))})
    extra = ["List-Unsubscribe: <https://sender.test/u/1>, <mailto:u@sender.test>",
             "List-Unsubscribe-Post: List-Unsubscribe=One-Click"]
    signed = sign(message(extra=extra), pair, include_headers=[
        b"from", b"subject", b"list-unsubscribe", b"list-unsubscribe-post"])
    assert "bulk.one-click" in _ids(_inspect(dns, signed))
    unsigned = sign(message(extra=extra), pair)
    assert "bulk.one-click-unsigned" in _ids(_inspect(dns, unsigned))
    no_post = sign(message(extra=extra[:1]), pair)
    assert "bulk.no-one-click" in _ids(_inspect(dns, no_post))


def test_offline_makes_no_lookups(dns_server, run_cli, tmp_path: Path) -> None:
    pair = key("rsa")
    dns = dns_server(zones={"sender.test.": sender_zone(key_line("s1", "sender.test", pair))})
    raw = sign(message(received=default_received()), pair)
    code, out, _ = run_cli("inspect", "--json", "--offline", "--nameserver", dns.nameserver,
                           str(write(tmp_path, raw)))
    doc = as_json(out)
    assert code == 0 and dns.queries == []
    found = ids(doc)
    for fid in ("dkim.unknown", "spf.unknown", "dmarc.unknown", "inspect.offline"):
        assert fid in found, fid
    assert doc["facts"]["dkim"][0]["result"] == "unknown"


def test_stdin_and_text_output(dns_server, run_cli) -> None:
    pair = key("rsa")
    dns = dns_server(zones={"sender.test.": sender_zone(key_line("s1", "sender.test", pair))})
    raw = sign_after_return_path(message(received=default_received()), pair)
    code, out, _ = run_cli("inspect", "--nameserver", dns.nameserver, "-", stdin=raw)
    text = out.decode()
    assert code == 0, text
    assert "entered here" in text and "dkim.pass" in text and "d=sender.test s=s1" in text


def test_unreadable_file_exit_2(run_cli, tmp_path: Path) -> None:
    code, out, err = run_cli("inspect", str(tmp_path / "missing.eml"))
    assert code == 2 and "cannot read" in err and out == b""
    code, out, _ = run_cli("inspect", "--json", str(tmp_path))
    assert code == 2 and as_json(out)["status"] == "error"


def test_bad_ip_option_exit_2(run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("inspect", "--ip", "not-an-ip", str(write(tmp_path, message())))
    assert code == 2 and "--ip" in err


def test_sender_override_null_sender_uses_helo(dns_server) -> None:
    dns = dns_server(zones={"sender.test.": sender_zone(
        f'out.sender.test. IN TXT "v=spf1 ip4:{SENDER_IP} -all"')})
    report = _inspect(dns, message(received=default_received()), sender="")
    assert report.facts["spf"]["domain"] == "out.sender.test"
    assert report.facts["spf"]["result"] == "pass"


def test_spf_lookup_failure_is_temperror(dns_server) -> None:
    pair = key("rsa")
    dns = dns_server(zones={"sender.test.": sender_zone(key_line("s1", "sender.test", pair))})
    dns.behaviour[("sender.test", "TXT")] = "servfail"
    report = _inspect(dns, sign(message(), pair), ip=SENDER_IP)
    found = _ids(report)
    assert "spf.temperror" in found and "spf.none" not in found
    assert "dkim.pass" in found and "dmarc.pass" in found  # DKIM alone carries DMARC


def test_arc_key_lookup_failure_is_error(dns_server) -> None:
    lst = key("list")
    dns = dns_server(zones={"list.test.": zone("list.test.", [key_line("arc", "list.test", lst)])})
    base = b"Authentication-Results: lists.list.test; dkim=none\r\n" + message()
    priv, _ = signing_key(lst)
    sealed = b"".join(dkim.arc_sign(base, b"arc", b"list.test", priv, b"lists.list.test",
                                    include_headers=[b"from", b"subject"])) + base
    dns.behaviour["arc._domainkey.list.test"] = "refused"
    found = _ids(_inspect(dns, sealed))
    assert "arc.lookup-failed" in found and "arc.fail" not in found
