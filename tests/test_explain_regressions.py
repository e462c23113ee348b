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
