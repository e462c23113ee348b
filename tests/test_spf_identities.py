"""check-domain --ip with --sender and/or --helo: one RFC 7208 result per identity, always."""

from __future__ import annotations

import json
from typing import Any

import pytest

ZONES = {"id.test.": """
@        TXT "v=spf1 ip4:192.0.2.1 -all exp=why.id.test"
why      TXT "%{i} may not send for %{d}"
mail     TXT "v=spf1 ip4:192.0.2.25 ~all"
mail     A   192.0.2.25
slow     TXT "v=spf1 include:gone.id.test -all"
"""}


@pytest.fixture
def zone(dns_server: Any) -> Any:
    server = dns_server(zones=ZONES)
    server.behaviour["gone.id.test"] = "timeout"
    return server


def run(cli: Any, zone: Any, *args: str, timeout: str = "3") -> tuple[int, dict[str, Any], str]:
    code, out, err = cli("check-domain", "--only", "spf", "--json", "--nameserver",
                         zone.nameserver, "--timeout", timeout, "--dns-retries", "0", *args)
    return code, json.loads(out), err


def results(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["identity"]: e for e in doc["facts"]["families"]["spf"]["evaluations"]}


def test_both_identities_without_a_domain_argument(cli, zone) -> None:
    code, doc, _ = run(cli, zone, "--ip", "192.0.2.25", "--sender", "a@id.test",
                       "--helo", "mail.id.test")
    got = results(doc)
    assert got["mailfrom"]["result"] == "fail" and got["mailfrom"]["mechanism"] == "-all"
    assert got["mailfrom"]["explanation"] == "192.0.2.25 may not send for id.test"
    assert got["helo"]["result"] == "pass" and got["helo"]["mechanism"] == "ip4:192.0.2.25"
    assert got["helo"]["explanation"] is None
    assert doc["target"] == "id.test" and code == 1
    found = {f["subject"]: f for f in doc["findings"] if f["id"] == "spf.result"}
    assert "explanation: 192.0.2.25 may not send" in found["mailfrom"]["detail"]


def test_helo_alone_and_text_output(cli, zone) -> None:
    code, doc, _ = run(cli, zone, "--ip", "192.0.2.9", "--helo", "mail.id.test")
    assert list(results(doc)) == ["helo"] and results(doc)["helo"]["result"] == "softfail"
    code, out, _ = cli("check-domain", "--only", "spf", "--nameserver", zone.nameserver,
                       "--timeout", "3", "--ip", "192.0.2.9", "--sender", "x@id.test")
    text = " ".join(out.split())  # the text renderer wraps long lines
    assert "SPF fail (matched -all)" in text and "explanation: 192.0.2.9 may not send" in text


def test_no_record_malformed_domain_and_timeout_are_results(cli, zone) -> None:
    _, doc, _ = run(cli, zone, "--ip", "192.0.2.9", "--sender", "x@nothing.id.test")
    assert results(doc)["mailfrom"]["result"] == "none"
    code, doc, err = run(cli, zone, "--ip", "192.0.2.9", "--sender", "x@a..id.test")
    assert results(doc)["mailfrom"]["result"] == "none" and code != 3 and not err
    assert {f["id"] for f in doc["findings"]} <= {"spf.result", "spf.not-a-domain"}
    code, doc, _ = run(cli, zone, "--ip", "192.0.2.9", "--sender", "x@slow.id.test",
                       timeout="0.5")
    assert results(doc)["mailfrom"]["result"] == "temperror" and code == 3
    assert "spf.missing" not in {f["id"] for f in doc["findings"]}


def test_null_sender_is_postmaster_at_helo(cli, zone) -> None:
    _, doc, _ = run(cli, zone, "--ip", "192.0.2.25", "--sender", "<>", "--helo", "mail.id.test")
    assert results(doc)["mailfrom"]["result"] == "pass"
    code, _, err = cli("check-domain", "--ip", "192.0.2.25", "--sender", "")
    assert code == 2 and "--helo" in err
