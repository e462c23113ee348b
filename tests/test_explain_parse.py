"""The reply parser: where codes hide in text, multi-line replies, and robustness."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpcli.codes.explainer import explain_text
from smtpcli.codes.find import find_replies
from smtpcli.codes.parse import join_continuations, parse_reply
from smtpcli.errors import UsageError


@pytest.mark.parametrize(("text", "code", "enhanced"), [
    ("550", 550, None),
    ("5.7.26", None, "5.7.26"),
    ("#5.3.4", None, "5.3.4"),
    ("550 5.7.26", 550, "5.7.26"),
    ("553 5.7.1 [BL23] Connections not accepted", 553, "5.7.1"),
    ("host x said: 550 5.1.1 <a@b>: no (in reply to RCPT TO command)", 550, "5.1.1"),
    ("553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)", 553, "5.7.1"),
    ("Sorry, no mailbox here by that name. (#5.1.1)", None, "5.1.1"),
    ("421 RP-001 (BAY004-MC1F7) Unfortunately, some messages from 192.0.2.8 weren't sent.",
     421, None),
    ("Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound'", 550, "5.1.10"),
    ("Diagnostic-Code: smtp; 451 4.7.650 The mail server [192.0.2.1] has been limited", 451,
     "4.7.650"),
    # IPv4 addresses and dotted versions are not enhanced codes.
    ("550 IP 198.51.100.10 is blocked", 550, None),
    ("421 deferred - 4.16.55.1; see https://example.com", 421, None),
    ("550 5.07.001 zero-padded", 550, "5.7.1"),
])
def test_codes_found(text: str, code: int | None, enhanced: str | None) -> None:
    reply = parse_reply(text)
    assert reply is not None
    assert (reply.code, reply.enhanced) == (code, enhanced)


@pytest.mark.parametrize("text", ["hello world", "", "   ", "650 nope", "1.2.3", "(554.30)",
                                  "192.0.2.1", "port 25 closed"])
def test_no_code(text: str) -> None:
    assert parse_reply(text) is None
    with pytest.raises(UsageError):
        explain_text(text)


def test_multiline_reply_joined_and_repeated_codes_dropped() -> None:
    text = ("550-5.7.26 This mail has been blocked because the sender is\n"
            "550-5.7.26 unauthenticated. Gmail requires all senders to authenticate\n"
            "550 5.7.26 with either SPF or DKIM. - gsmtp")
    joined = join_continuations(text)
    assert joined == ("550-5.7.26 This mail has been blocked because the sender is "
                      "unauthenticated. Gmail requires all senders to authenticate "
                      "with either SPF or DKIM. - gsmtp")
    _, [record] = explain_text(text)
    assert record["rule"] == "gmail.unauthenticated"


def test_exim_escaped_newlines_and_mid_line_start() -> None:
    text = ("SMTP error from remote mail server after RCPT TO:<a@example.com>: 451-192.0.2.5 is "
            "not yet authorized to deliver mail from\\n451 <s@example.net> to <a@example.com>. "
            "Please try later.")
    reply = parse_reply(text)
    assert reply is not None and reply.code == 451
    assert "\\n" not in reply.text and "451 <s@" not in reply.text


def test_basic_code_at_line_start_wins_over_numbers_in_text() -> None:
    reply = parse_reply("452 4.5.3 Too many recipients (limit 250 per message)")
    assert reply is not None and (reply.code, reply.enhanced) == (452, "4.5.3")


def test_bare_detection() -> None:
    assert parse_reply("550 5.7.26").bare  # type: ignore[union-attr]
    assert parse_reply("#5.3.4").bare  # type: ignore[union-attr]
    assert not parse_reply("550 5.7.26 go away").bare  # type: ignore[union-attr]


@settings(deadline=None)
@given(st.text())
def test_any_text_never_crashes_the_parser(text: str) -> None:
    replies = find_replies(text)
    for reply in replies:
        assert reply.code is not None or reply.enhanced is not None


_REPLYISH = st.lists(
    st.one_of(
        st.sampled_from(["550", "550-", "5.7.1", "#4.2.2", "421 ", "\n", "\\n", " ", "<a@b.c>:",
                         "Final-Recipient: rfc822; a@b.c\n", "Status: 5.1.1\n", "Action: failed",
                         "Diagnostic-Code: smtp; ", "\n\n", "said: ", "(in reply to RCPT TO",
                         "Content-Type: message/delivery-status\n", "  x@y.z\n    ", "--b\n"]),
        st.text(max_size=12),
    ),
    max_size=30,
).map("".join)


@settings(deadline=None)
@given(_REPLYISH)
def test_reply_like_text_only_ever_raises_usage_error(text: str) -> None:
    try:
        kind, records = explain_text(text)
    except UsageError:
        return
    assert kind in ("code", "reply", "bounce", "dsn")
    for record in records:
        assert record["class"] in ("success", "intermediate", "transient", "permanent")
        assert isinstance(record["retry_helps"], bool)
        assert record["summary"] and record["fix"]
