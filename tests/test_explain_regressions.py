"""One-line replies that explain once read wrong (issue 13): each keeps its right reading.

The words say more than the code: the reason wins over the SMTP stage that Postfix names
("Recipient address rejected:"), and a 2xx reply refuses nothing."""

from __future__ import annotations

import pytest

from smtpcli.codes.explainer import explain_text

CASES = [
    ("550 5.7.23 <b@x.com>: Recipient address rejected: Message rejected due to: SPF fail",
     "permanent", "5.7.23", "sender-authentication"),
    ("550 5.7.1 [BFD] Sender prohibited by SPF", "permanent", "5.7.1", "sender-authentication"),
    ("553-SPF (Sender Policy Framework) domain authentication fail", "permanent", None,
     "sender-authentication"),
    ("550-inconsistent or no DNS PTR record", "permanent", None, "reverse-dns"),
    ("450 too frequent connects from 198.51.100.7, please try again later", "transient", None,
     "rate-limit"),
    ("421 4.7.1 ... deferred due to excessive volume", "transient", "4.7.1", "rate-limit"),
    ("550 5.1.0 192.0.2.1 is not allowed to send from <example.jp>", "permanent", "5.1.0",
     "sender-authentication"),
    ("550 5.5.0 recipient account is blocked", "permanent", "5.5.0", "mailbox-disabled"),
    ("550 5.2.1 Mailbox is frozen", "permanent", "5.2.1", "mailbox-disabled"),
    ("550 5.1.2 DNS Error: DNS type 'mx' lookup of example.org responded with code NXDOMAIN",
     "permanent", "5.1.2", "routing"),
    ("556 5.1.10 Recipient address rejected: Domain example.net has null MX", "permanent",
     "5.1.10", "receiver-misconfiguration"),
    ("451 4.7.1 frequency limited, try again later", "transient", "4.7.1", "rate-limit"),
    # Words real MTAs use for the same causes.
    ("550 5.2.1 <u@example.jp>: Recipient address rejected: User u@example.jp temporary "
     "locked. Please try again later!", "permanent", "5.2.1", "mailbox-disabled"),
    ("550 5.7.13 Disabled recipient address", "permanent", "5.7.13", "mailbox-disabled"),
    ("451 4.4.7 Message expired after sitting in queue for 5 days", "transient", "4.4.7",
     "server-unavailable"),
    ("450 4.7.1 delivery temporarily suspended: connect to mx.example.net[192.0.2.1]:25: "
     "Connection timed out", "transient", "4.7.1", "server-unavailable"),
    ("552 5.2.2 Mailbox size limit exceeded", "permanent", "5.2.2", "mailbox-full"),
    ("550 5.7.1 Sender address has been blacklisted", "permanent", "5.7.1", "sender-blocked"),
    ("550 5.7.1 Blacklisted URL in message. (example.com) in [black]", "permanent", "5.7.1",
     "content-filter"),
    ("421 4.7.0 Too many connections from your host.", "transient", "4.7.0", "rate-limit"),
    ("550 5.1.3 Bad destination mailbox address syntax", "permanent", "5.1.3",
     "recipient-unknown"),
    ("554 5.4.316 Message expired, connection refused", "permanent", "5.4.316",
     "server-unavailable"),
    ("550 5.3.0 Error: queue file write error", "permanent", "5.3.0", "server-unavailable"),
    # The stage alone: the registry meaning of the code decides.
    ("554 5.7.1 <a@example.org>: Recipient address rejected: Please see our policy",
     "permanent", "5.7.1", "policy-denied"),
    ("550 <a@example.org>: Recipient address rejected", "permanent", None,
     "recipient-unknown"),
]


@pytest.mark.parametrize("line,klass,enhanced,cause", CASES, ids=[c[0][:40] for c in CASES])
def test_reason_beats_stage(line: str, klass: str, enhanced: str | None, cause: str) -> None:
    _, records = explain_text(line)
    assert len(records) == 1
    rec = records[0]
    assert (rec["class"], rec["enhanced"], rec["cause"]) == (klass, enhanced, cause)


def test_2xx_never_refuses() -> None:
    _, (rec,) = explain_text("252 Administrative prohibition")
    assert rec["class"] == "success" and rec["cause"] is None and rec["rule"] is None
    assert "refuse" not in rec["summary"].lower()
    assert rec["fix"].startswith("Nothing to fix")
