"""Bounce layouts and reply-selection rules of smtpcli.codes.bounce, one small message each.

The messages are written here in the shapes the MTAs use (see their sources and bounce
templates: Postfix bounce(8), qmail-send, Exim, Sendmail, OpenSMTPD, RFC 3464); what is
asserted is the reading: one record per failed recipient, with its own reply."""

from __future__ import annotations

import email
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from smtpcli.codes.bounce import is_bounce
from smtpcli.codes.explainer import explain_bytes
from smtpcli.errors import UsageError

HEAD = ("From: MAILER-DAEMON@mx.example.net\nTo: sender@example.org\n"
        "Subject: Undelivered Mail Returned to Sender\nMessage-ID: <b1@mx.example.net>\n")


def _records(body: str, head: str = HEAD) -> list[tuple[str | None, int | None, str | None,
                                                       str]]:
    _, records = explain_bytes((head + body).encode())
    return [(r["recipient"], r["code"], r["enhanced"], r["cause"]) for r in records]


def test_qmail_blocks() -> None:
    body = ("\nHi. This is the qmail-send program at mx.example.net.\n"
            "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
            "<a@example.jp>:\n192.0.2.1 does not like recipient.\n"
            "Remote host said: 550 5.1.1 <a@example.jp>... User Unknown\n"
            "Giving up on 192.0.2.1.\n\n"
            "<b@example.jp>:\n192.0.2.1 does not like recipient.\n"
            "Remote host said: 552 5.2.2 <b@example.jp>... Mailbox Full\n\n"
            "--- Below this line is a copy of the message.\n\n"
            "Return-Path: <sender@example.org>\nFrom: sender@example.org\n"
            "To: a@example.jp, b@example.jp\nSubject: x\n\n550 5.7.1 not this one\n")
    assert _records(body) == [("a@example.jp", 550, "5.1.1", "recipient-unknown"),
                              ("b@example.jp", 552, "5.2.2", "mailbox-full")]


def test_opensmtpd_lines() -> None:
    body = ("\n    Hi!\n\n    An error has occurred while attempting to deliver a message for\n"
            "    the following list of recipients:\n\n"
            "full@example.jp: 552 5.2.2 <full@example.jp>... Mailbox Full\n"
            "gone@example.jp: 550 5.1.1 <gone@example.jp>... User Unknown\n\n"
            "    Below is a copy of the original message:\n\nSubject: t\nFrom: s@example.org\n")
    assert _records(body) == [("full@example.jp", 552, "5.2.2", "mailbox-full"),
                              ("gone@example.jp", 550, "5.1.1", "recipient-unknown")]


def test_exim_indented_address() -> None:
    body = ("\nThis message was created automatically by mail delivery software.\n\n"
            "A message that you sent could not be delivered to one or more of its\n"
            "recipients. This is a permanent error. The following address(es) failed:\n\n"
            "  user@example.com\n"
            "    host mx.example.com [192.0.2.9]\n"
            "    SMTP error from remote mail server after RCPT TO:<user@example.com>:\n"
            "    550 5.1.1 No such user here\n\n"
            "------ This is a copy of the message, including all the headers. ------\n\n"
            "From: s@example.org\nSubject: t\n")
    _, (rec,) = explain_bytes((HEAD + body).encode())
    assert (rec["recipient"], rec["code"], rec["enhanced"], rec["cause"]) == (
        "user@example.com", 550, "5.1.1", "recipient-unknown")
    assert rec["server"] == "mx.example.com"


def test_sendmail_transcript_failure_after_250() -> None:
    # An earlier 250 in the quoted transcript is not the failure; the 451 after it is.
    body = ("\n   ----- The following addresses had permanent fatal errors -----\n"
            "<x@example.net>\n\n   ----- Transcript of session follows -----\n"
            "... while talking to mx.example.net.:\n>>> MAIL From:<s@example.org>\n"
            "<<< 250 2.1.0 Ok\n>>> RCPT To:<x@example.net>\n<<< 250 2.1.5 Ok\n>>> DATA\n"
            "<<< 451 4.3.0 Error: queue file write error\n")
    assert _records(body) == [("x@example.net", 451, "4.3.0", "server-unavailable")]


def test_greeting_is_not_the_failure() -> None:
    body = ("\nThere was an error delivering your mail to <r@example.fr>.\n\n"
            "smtp.example.fr [192.0.2.7] said: 220-smtp.example.fr 421 4.7.0 Service "
            "refused, too many connections from your IP, try later\n")
    (rec,) = _records(body)
    assert rec[:3] == ("r@example.fr", 421, "4.7.0")


def test_numbers_in_ips_versions_and_exit_statuses_are_not_codes() -> None:
    dsn = ("MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; "
           "boundary=B\n\n--B\nContent-Type: text/plain\n\nDelivery to a local program "
           "failed (Postfix 2.2.22 on host 10.2.753.1).\n\n--B\n"
           "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
           "Final-Recipient: rfc822; p@example.net\nAction: failed\nStatus: 5.3.0\n"
           "Diagnostic-Code: X-Unix; 255\n\n--B--\n")
    (rec,) = _records(dsn)
    assert rec == ("p@example.net", None, "5.3.0", rec[3])


def test_generic_dsn_status_gives_way_to_the_text_reply() -> None:
    dsn = ("MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; "
           "boundary=B\n\n--B\nContent-Type: text/plain\n\n<g@example.com>: host "
           "gmail-smtp-in.l.google.com[192.0.2.3] said: 550-5.7.26 Unauthenticated email is "
           "not accepted due to domain's DMARC policy. 550 5.7.26 - gsmtp (in reply to end "
           "of DATA command)\n\n--B\nContent-Type: message/delivery-status\n\n"
           "Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; g@example.com\n"
           "Action: failed\nStatus: 5.0.0\n\n--B--\n")
    assert _records(dsn) == [("g@example.com", 550, "5.7.26", "sender-authentication")]


def test_dsn_groups_without_blank_lines_and_returned_original_ignored() -> None:
    inner_dsn = ("Content-Type: message/delivery-status\n\nReporting-MTA: dns; old\n\n"
                 "Final-Recipient: rfc822; old@example.org\nAction: failed\nStatus: 5.1.1\n")
    dsn = ("MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; "
           "boundary=B\n\n--B\nContent-Type: text/plain\n\nSorry.\n\n--B\n"
           "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n"
           "Final-Recipient: rfc822; one@example.jp\nAction: failed\nStatus: 5.2.2\n"
           "Diagnostic-Code: smtp; 552 5.2.2 Mailbox Full\n"
           "Final-Recipient: rfc822; two@example.jp\nAction: failed\nStatus: 5.1.1\n"
           "Diagnostic-Code: smtp; 550 5.1.1 User Unknown\n\n--B\n"
           "Content-Type: message/rfc822\n\nFrom: s@example.org\nMIME-Version: 1.0\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=C\n\n"
           "--C\n" + inner_dsn + "\n--C--\n\n--B--\n")
    assert _records(dsn) == [("one@example.jp", 552, "5.2.2", "mailbox-full"),
                             ("two@example.jp", 550, "5.1.1", "recipient-unknown")]


def test_same_recipient_in_two_languages_is_one_record() -> None:
    body = ("\n<u@example.jp>:\nRemote host said: 550 5.1.1 <u@example.jp>... User Unknown\n\n"
            "<u@example.jp>:\n\u30ea\u30e2\u30fc\u30c8\u30db\u30b9\u30c8: 550 5.1.1 "
            "<u@example.jp>... User Unknown\n")
    assert _records(body) == [("u@example.jp", 550, "5.1.1", "recipient-unknown")]


def test_bounce_without_code_is_explained_from_its_words() -> None:
    body = ("\nThis is the mail system.\n\nThere was an error delivering your mail to "
            "<f@example.org>.\nMailbox is frozen.\n\nThis is a permanent error; I've given "
            "up.\n")
    _, (rec,) = explain_bytes((HEAD + body).encode())
    assert (rec["code"], rec["enhanced"], rec["class"], rec["cause"]) == (
        None, None, "permanent", "mailbox-disabled")
    assert any("states no SMTP reply code" in n for n in rec["notes"])
    delayed = body.replace("permanent error; I've given up", "Delivery has been delayed; "
                                                             "we will retry")
    _, (rec,) = explain_bytes((HEAD + delayed).encode())
    assert rec["class"] == "transient"


def test_ses_json_notification() -> None:
    message = {"notificationType": "Bounce", "bounce": {
        "bounceType": "Permanent", "bouncedRecipients": [
            {"emailAddress": "bounce@example.com", "action": "failed", "status": "5.1.1",
             "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
        "mail": {"source": "s@example.org"}}
    body = "\n" + json.dumps({"Type": "Notification", "Message": json.dumps(message)}) + "\n"
    head = "From: no-reply@sns.example.com\nTo: s@example.org\nSubject: AWS Notification\n"
    assert _records(body, head) == [("bounce@example.com", 550, "5.1.1", "recipient-unknown")]


def test_forwarded_bounce_is_read_when_the_outer_says_nothing() -> None:
    inner = ("From: MAILER-DAEMON@mx.example.net\nSubject: Returned mail\n\n"
             "<n@example.org>:\nRemote host said: 550 5.1.1 unknown user\n")
    outer = ("From: helpdesk@example.org\nTo: s@example.org\nSubject: Fwd: Returned mail\n"
             "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=Z\n\n--Z\n"
             "Content-Type: text/plain\n\nSee attached.\n\n--Z\n"
             "Content-Type: message/rfc822\n\n" + inner + "\n--Z--\n")
    _, records = explain_bytes(outer.encode())
    assert [(r["recipient"], r["enhanced"]) for r in records] == [("n@example.org", "5.1.1")]


_PIECES = st.sampled_from([
    HEAD, "MIME-Version: 1.0\n", "Content-Type: multipart/report; boundary=B\n", "\n", "--B\n",
    "--B--\n", "Content-Type: message/delivery-status\n", "Content-Type: message/rfc822\n",
    "Final-Recipient: rfc822; a@example.org\n", "Action: failed\n", "Status: 5.1.1\n",
    "Diagnostic-Code: X-Unix; 255\n", "Diagnostic-Code: smtp; 550 5.7.1 no\n",
    "<b@example.org>:\n", "Remote host said: 421 4.2.1 later\n", "  c@example.org\n",
    ">>> RCPT To:<d@example.org>\n", "<<< 250 2.0.0 Ok\n", "220-greeting 451 4.3.0 x\n",
    "--- Below this line is a copy of the message.\n", "{\"bouncedRecipients\": [\n",
    "Content-Transfer-Encoding: base64\n", "=?utf-8?b?///=?=\n", "\x00\xff\n",
])


@settings(deadline=None)
@given(st.lists(_PIECES, max_size=25), st.text(max_size=80))
def test_any_message_is_read_without_crashing(pieces: list[str], noise: str) -> None:
    """Whatever the layout, the reader returns records or says there are none."""
    raw = ("".join(pieces) + noise).encode("utf-8", "surrogatepass")
    try:
        _, records = explain_bytes(raw)
    except UsageError:
        return
    for rec in records:
        assert rec["class"] in ("success", "intermediate", "transient", "permanent")
        assert rec["enhanced"] is None or rec["enhanced"][0] in "245"


def test_delivered_recipients_of_a_dsn_are_not_failures() -> None:
    dsn = ("MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; "
           "boundary=B\n\n--B\nContent-Type: message/delivery-status\n\n"
           "Reporting-MTA: dns; mx.example.net\n\n"
           "Final-Recipient: rfc822; ok@example.org\nAction: relayed\nStatus: 2.0.0\n\n"
           "Final-Recipient: rfc822; bad@example.org\nAction: failed\nStatus: 5.1.1\n"
           "Diagnostic-Code: smtp; 550 5.1.1 unknown user\n\n--B--\n")
    assert _records(dsn) == [("bad@example.org", 550, "5.1.1", "recipient-unknown")]


def test_the_bounce_own_addressee_is_not_a_failed_recipient() -> None:
    body = ("\nYour message to the following recipient failed:\n\n<gone@example.jp>:\n"
            "550 5.1.1 no such user\n\nThis report was sent to:\n<sender@example.org>\n")
    assert _records(body) == [("gone@example.jp", 550, "5.1.1", "recipient-unknown")]


def test_japanese_text_declared_iso2022jp_but_euc_jp() -> None:
    text = "\u9001\u4fe1\u5148\u30e1\u30fc\u30eb\u30a2\u30c9\u30ec\u30b9\u304c\u898b" \
        "\u3064\u304b\u308a\u307e\u305b\u3093\u3067\u3057\u305f\u3002"
    raw = (HEAD + "MIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-2022-JP\n\n").encode() \
        + text.encode("euc-jp") + b"\n\n<j@example.ne.jp>\n"
    _, (rec,) = explain_bytes(raw)
    assert rec["recipient"] == "j@example.ne.jp" and rec["cause"] == "recipient-unknown"
    assert text in rec["text"]


def test_what_counts_as_a_bounce() -> None:
    def bounce(text: str) -> bool:
        return is_bounce(email.message_from_string(text))

    assert bounce(HEAD + "\nsorry\n")
    assert bounce("From: list-owner@lists.example.org\nReturn-Path: <list-owner@lists.example"
                  ".org>\nSubject: Loop Alert: Duplicated Message-ID\n\nx\n")
    assert bounce("From: x@example.org\nReturn-Path: <>\nSubject: Undeliverable: hi\n\nx\n")
    # A newsletter whose envelope sender is a bounce-handling address is not a bounce.
    assert not bounce("From: news@shop.example\nReturn-Path: <bounces+123@esp.example>\n"
                      "Subject: Our delivery offers\n\nbuy\n")
    # Read receipts and abuse reports are multipart/report too, but not bounces.
    assert not bounce("From: a@example.org\nContent-Type: multipart/report; "
                      "report-type=disposition-notification; boundary=B\n\n--B--\n")
    assert not bounce("From: abuse@example.net\nContent-Type: multipart/report; "
                      "report-type=feedback-report; boundary=B\n\n--B--\n")


def test_report_with_a_broken_boundary_still_gives_its_dsn_fields() -> None:
    # The Content-Type names one boundary, the body uses another: everything is one text part.
    raw = (HEAD + "MIME-Version: 1.0\nContent-Type: multipart/report; "
           "report-type=delivery-status; boundary=\"ABC/x.example\"\n\n"
           "--ABC/xx.example\nContent-Type: text/plain\n\n<r@example.fr>: host mx.example.fr"
           "[192.0.2.5] refused to talk to me: 421 Service refused, please try later\n\n"
           "--ABC/xx.example\nContent-Type: message/delivery-status\n\n"
           "Reporting-MTA: dns; mx.example.net\nX-Postfix-Queue-ID: 1234\n"
           "X-Postfix-Sender: rfc822; s@example.org\n\nFinal-Recipient: rfc822; r@example.fr\n"
           "Action: failed\nStatus: 4.0.0\nDiagnostic-Code: smtp; 421 Service refused\n\n"
           "--ABC/xx.example\nContent-Type: message/rfc822\n\nFrom: s@example.org\n\nhi\n"
           "--ABC/xx.example--\n")
    assert _records(raw, head="") == [("r@example.fr", 421, "4.0.0", "server-unavailable")]


def test_courier_transcript_block() -> None:
    body = ("\nThis is a delivery status notification from mx.example.net,\nrunning the "
            "Courier mail server, version 0.65.2.\n\n"
            "Your message to the following recipients cannot be delivered:\n\n"
            "<k@example.org>:\n    mx.example.org [192.0.2.2]:\n>>> RCPT TO:<k@example.org>\n"
            "<<< 550 5.1.1 <k@example.org>... User Unknown\n\n"
            "-----------------------------------------------------------------------------\n")
    _, (rec,) = explain_bytes((HEAD + body).encode())
    assert (rec["recipient"], rec["code"], rec["enhanced"], rec["cause"], rec["server"]) == (
        "k@example.org", 550, "5.1.1", "recipient-unknown", "mx.example.org")


def test_exchange_2007_diagnostic_block() -> None:
    body = ("\nDelivery has failed to these recipients or groups:\n\ne@example.com\n"
            "The recipient's e-mail address was not found in the recipient's e-mail system.\n\n"
            "Diagnostic information for administrators:\n\nGenerating server: mx.example.com\n\n"
            "e@example.com\n#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##\n\n"
            "Original message headers:\n\nReceived: from a.example.org\nFrom: s@example.org\n")
    assert _records(body) == [("e@example.com", 550, "5.1.1", "recipient-unknown")]


def test_domino_words_only() -> None:
    body = ("\nYour message\n\n  Subject: Test\n\nwas not delivered to:\n\n  d@example.com\n\n"
            "because:\n\n  User d (d@example.com) not listed in Domino Directory\n")
    _, (rec,) = explain_bytes((HEAD + body).encode())
    assert (rec["recipient"], rec["code"], rec["class"], rec["cause"]) == (
        "d@example.com", None, "permanent", "recipient-unknown")


def test_gmail_recipients_listed_then_one_reply() -> None:
    body = ("\nDelivery to the following recipients failed permanently:\n\n"
            "     one@example.com\n     two@example.com\n\n"
            "Technical details of permanent failure:\nGoogle tried to deliver your message, "
            "but it was rejected by the server for the recipient domain example.com by "
            "mx.example.com. [192.0.2.1].\n\nThe error that the other server returned was:\n"
            "550 5.1.1 User unknown\n")
    assert _records(body) == [("one@example.com", 550, "5.1.1", "recipient-unknown"),
                              ("two@example.com", 550, "5.1.1", "recipient-unknown")]
