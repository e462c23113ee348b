"""Bounces and RFC 3464 delivery status notifications: one record per recipient."""

from __future__ import annotations

from pathlib import Path

import pytest

from smtpcli.codes.explainer import explain_text

DATA = Path(__file__).parent / "data" / "explain"


def _explain(name: str) -> tuple[str, list[dict]]:
    return explain_text((DATA / name).read_text(encoding="utf-8"))


def test_postfix_dsn_three_recipients() -> None:
    kind, records = _explain("postfix-dsn-3rcpt.eml")
    assert kind == "dsn"
    got = [(r["recipient"], r["action"], r["code"], r["enhanced"], r["class"], r["cause"],
            r["provider"], r["retry_helps"]) for r in records]
    assert got == [
        ("nobody@example.com", "failed", 550, "5.1.1", "permanent", "recipient-unknown",
         "Postfix", False),
        # Status: 5.0.0, but the diagnostic's 5.7.606 is the more specific code.
        ("boss@example.net", "failed", 550, "5.7.606", "permanent", "ip-reputation",
         "Microsoft", False),
        ("friend@example.edu", "delayed", 451, "4.7.650", "transient", "ip-reputation",
         "Microsoft", True),
    ]


def test_gmail_dsn_folded_multiline_diagnostic() -> None:
    kind, records = _explain("gmail-dsn-2rcpt.eml")
    assert kind == "dsn"
    assert [(r["recipient"], r["cause"], r["rule"]) for r in records] == [
        ("ghost@example.com", "recipient-unknown", "gmail.no-such-user"),
        ("full@example.com", "mailbox-full", "gmail.over-quota"),
    ]
    # The folded "550-5.1.1" continuation prefixes are gone from the joined text.
    assert "550-5.1.1 double" not in records[0]["text"]
    assert "Please try double-checking" in records[0]["text"]


def test_delivery_status_fields_without_mime() -> None:
    kind, records = _explain("dsn-fields-only.txt")
    assert kind == "dsn"
    assert [(r["recipient"], r["code"], r["enhanced"], r["cause"]) for r in records] == [
        ("user@example.com", None, "5.1.1", "recipient-unknown"),
        ("big@example.com", 552, "5.3.4", "message-too-large"),
    ]


@pytest.mark.parametrize(("name", "expected"), [
    ("exim-bounce.txt", [("user@hotmail.example", "Microsoft", "ip-reputation"),
                         ("someone@yahoo.example", "Yahoo", "ip-reputation")]),
    ("postfix-pasted.txt", [("nobody@example.com", "Postfix", "recipient-unknown"),
                            ("later@example.net", None, "greylisting")]),
])
def test_pasted_bounces(name: str, expected: list[tuple]) -> None:
    kind, records = _explain(name)
    assert kind == "bounce"
    assert [(r["recipient"], r["provider"], r["cause"]) for r in records] == expected


def test_dsn_recipient_without_any_status_is_skipped() -> None:
    text = ("Content-Type: multipart/report; boundary=b\n\n--b\n"
            "Content-Type: message/delivery-status\n\nReporting-MTA: dns; a.example\n\n"
            "Final-Recipient: rfc822; a@example.com\nAction: failed\n\n"
            "Final-Recipient: rfc822; b@example.com\nAction: failed\nStatus: 5.2.1\n\n--b--\n")
    _, records = explain_text(text)
    assert [(r["recipient"], r["cause"]) for r in records] == [("b@example.com",
                                                                "mailbox-disabled")]
