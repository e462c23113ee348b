"""Read a bounce message: one Reply per failed recipient.

Sources, merged per recipient (first appearance decides the order):
- the RFC 3464 delivery-status part (Final-Recipient, Action, Status, Diagnostic-Code);
- the human-readable text: the per-recipient blocks of the common MTA layouts
  (bounce_text), or, when none is found, the failed addresses the text names;
- an Amazon SES JSON notification (``bouncedRecipients``).

The returned original (message/rfc822, text/rfc822-headers, or the copy that plain-text bounces
append below a "copy of the message" line) is never read: its own DSN is not a second failure.
Pure functions over bytes/str; no third-party imports (explain must start fast).
"""

from __future__ import annotations

import email
import email.message
import json
import re
from collections.abc import Callable
from email.header import decode_header, make_header

from smtpcli.codes.bounce_text import (
    PATTERNS,
    SYSTEM_LOCALS,
    block_reply,
    cut_original,
    find_server,
    looks_like_message,
    merge_replies,
    text_blocks,
)
from smtpcli.codes.parse import (
    Reply,
    _field_pairs,
    delivery_status_blocks,
    dsn_recipients,
    parse_reply,
    rx,
    squash,
)

_RX = {
    "tag": re.compile(r"<(?:style|script|head)\b.*?</(?:style|script|head)>|<[^>]+>", re.I | re.S),
    "transient_words": re.compile(r"will (?:retry|try again|continue trying|keep trying)|"
                                  r"delayed|not yet been delivered|temporar|transient|"
                                  r"warning: message still undelivered", re.I),
    "bounce_subject": re.compile(
        r"undeliver|returned|failure|failed|delivery (?:status|notification|report)|"
        r"not delivered|bounce|non.?delivery|could not be delivered|mail delivery|"
        r"delivery problem|error|warning|rejected|returning message|loop|"
        r"\u914d\u4fe1|\u30a8\u30e9\u30fc|\u4e0d\u80fd|\u5931\u6557", re.I),
    "daemon": re.compile(r"mailer-daemon|mail-daemon|post_?master|mail delivery|maildelivery|"
                         r"mail administrator|mail system", re.I),
    "list_admin": re.compile(r"[-_.](?:admin|owner|request)@|^owner-", re.I),
}
_SKIP_PARTS = {"message/rfc822", "text/rfc822-headers", "message/rfc822-headers",
               "message/global", "message/global-headers", "message/partial",
               "message/external-body"}
_DSN_PARTS = {"message/delivery-status", "message/global-delivery-status"}


def _decode(part: email.message.Message) -> str:
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    declared = part.get_content_charset() or "utf-8"
    # Japanese carriers often declare ISO-2022-JP over EUC-JP or Shift_JIS bytes: the declared
    # charset first, then the common ones, strictly; the declared one with replacements last.
    for charset in (declared, "utf-8", "euc-jp", "shift_jis", "iso-2022-jp"):
        try:
            return raw.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    try:
        return raw.decode(declared, "replace")
    except LookupError:
        return raw.decode("utf-8", "replace")


def _html_text(html: str) -> str:
    import html as html_mod

    text = re.sub(r"(?i)<br\s*/?>|</(?:p|div|tr|li|h\d)>", "\n", html)
    return html_mod.unescape(_RX["tag"].sub(" ", text))


def _header(msg: email.message.Message, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except Exception:  # undecodable encoded-words: keep the raw header
        return str(value)


class _Parts:
    """The parts of a bounce that are read: DSN field blocks, texts, originals' headers."""

    def __init__(self) -> None:
        self.dsn: list[dict[str, str]] = []
        self.texts: list[str] = []
        self.original: list[email.message.Message | str] = []


def _collect(part: email.message.Message, out: _Parts) -> None:
    ctype = part.get_content_type()
    if ctype in _SKIP_PARTS:
        payload = part.get_payload()
        if isinstance(payload, list) and payload:
            out.original.append(payload[0])
        elif isinstance(payload, str):
            out.original.append(payload)
        return
    if ctype in _DSN_PARTS:
        out.dsn.extend(dsn_recipients(delivery_status_blocks(part)))
        return
    if part.is_multipart():
        for sub in part.get_payload():  # type: ignore[union-attr]
            if isinstance(sub, email.message.Message):
                _collect(sub, out)
        return
    if part.get_content_maintype() == "multipart":
        # A multipart whose boundary could not be read (a malformed header): its raw text.
        out.texts.append(_decode(part))
    elif ctype == "text/html":
        out.texts.append(_html_text(_decode(part)))
    elif ctype.startswith("text/") or ctype in ("application/json", "message/feedback-report"):
        out.texts.append(_decode(part))


def _json_records(texts: list[str]) -> list[Reply]:
    """Amazon SES bounce notifications (JSON, possibly wrapped in an SNS envelope)."""
    for text in texts:
        start = text.find("{")
        if start < 0 or "bouncedRecipients" not in text:
            continue
        body = text[start:text.rfind("}") + 1]
        try:
            doc = json.loads(body)
        except ValueError:
            try:  # a line folded inside a JSON string by the mail system
                doc = json.loads(re.sub(r"\r?\n", "", body))
            except ValueError:
                continue
        if isinstance(doc.get("Message"), str):
            try:
                doc = json.loads(doc["Message"])
            except ValueError:
                continue
        bounce = doc.get("bounce") or {}
        out = []
        permanent = str(bounce.get("bounceType", "")).lower() == "permanent"
        for rcpt in bounce.get("bouncedRecipients") or []:
            diag = str(rcpt.get("diagnosticCode") or "")
            reply = parse_reply(diag.partition(";")[2] or diag, source="bounce") or Reply(
                None, None, squash(diag), source="bounce")
            status = str(rcpt.get("status") or "")
            if status and (reply.enhanced is None or reply.enhanced.endswith(".0.0")):
                reply.enhanced = status if rx("enhanced").fullmatch(status) else reply.enhanced
            reply.recipient = str(rcpt.get("emailAddress") or "").strip("<>") or None
            reply.action = "failed" if permanent else "delayed"
            out.append(reply)
        if out:
            return out
    return []


def _dsn_record(fields: dict[str, str]) -> tuple[str | None, Reply]:
    from smtpcli.codes.parse import _address, _dsn_reply

    reply = _dsn_reply(fields) or Reply(None, None, "", source="dsn")
    final = _address(fields.get("final-recipient"))
    original = _address(fields.get("original-recipient"))
    reply.recipient = final if final and ("@" in final or not original) else original
    reply.action = squash(fields.get("action", "")).lower() or None
    remote = _address(fields.get("remote-mta"))
    reply.server = remote.strip("[]").rstrip(".") if remote else None
    return reply.recipient, reply


def _class_from_words(text: str, action: str | None) -> str:
    if action:
        if action.startswith("delayed"):
            return "4"
        if action.startswith("failed"):
            return "5"
    if _RX["transient_words"].search(text) and not re.search(
            r"permanent|given up|giving up|fatal", text, re.I):
        return "4"
    return "5"


def _sender_addresses(msg: email.message.Message) -> set[str]:
    out: set[str] = set()
    for name in ("From", "Return-Path", "Reply-To", "Sender", "To", "Delivered-To",
                 "Errors-To"):
        out.update(a.lower() for a in PATTERNS["addr"].findall(_header(msg, name)))
    return out


def is_bounce(msg: email.message.Message) -> bool:
    """A delivery report by its type, sender or subject (for --mailbox: others are skipped).

    Read receipts and abuse reports are reports too (RFC 8098, RFC 5965) but not bounces; a
    bulk sender's Return-Path (bounces+...@esp.example) does not make its mail a bounce."""
    if msg.get_content_type() == "multipart/report":
        report_type = str(msg.get_param("report-type") or "delivery-status").lower()
        return report_type in ("delivery-status", "global-delivery-status")
    if msg.get("X-Failed-Recipients") or "failure" in str(msg.get("Auto-Submitted", "")).lower():
        return True  # Exim's list; RFC 3834's "auto-replied (failure)" of Sendmail and others
    sender = _header(msg, "From")
    if _RX["daemon"].search(sender):
        return True
    payload = msg.get_payload()
    if isinstance(payload, str) and "bouncedRecipients" in payload:
        return True  # an Amazon SES bounce notification (JSON, maybe inside SNS)
    # Otherwise the subject must say so, and the envelope sender be null (RFC 5321 section
    # 4.5.5) or a list manager's address.
    senders = PATTERNS["addr"].findall(sender + " " + _header(msg, "Return-Path"))
    null_sender = "<>" in str(msg.get("Return-Path", "<>"))
    return bool(_RX["bounce_subject"].search(_header(msg, "Subject")) and (
        null_sender or any(_RX["list_admin"].search(a) for a in senders)))


def _maybe_bounce(msg: email.message.Message) -> bool:
    """Weaker signs, enough for a file the user says is a bounce: a bounce-like subject, an
    automatic message (RFC 3834 Auto-Submitted), or a null envelope sender."""
    return bool(_RX["bounce_subject"].search(_header(msg, "Subject"))
                or msg.get("Auto-Submitted") or str(msg.get("Return-Path", "")).strip() == "<>")


def read_message(msg: email.message.Message) -> list[Reply]:
    """Every failed recipient of a bounce message, each with the reply that counts."""
    parts = _Parts()
    _collect(msg, parts)
    # An ordinary message's addresses are not failed recipients: without a report or a
    # bounce's sender/subject, only an MTA layout that states a reply counts.
    bounce_like = bool(parts.dsn) or is_bounce(msg) or _maybe_bounce(msg)
    records: dict[str, Reply] = {}
    order: list[str] = []

    def add(recipient: str | None, reply: Reply | None) -> None:
        if not recipient or reply is None:
            return
        key = recipient.lower()
        if key not in records:
            order.append(key)
            reply.recipient = recipient
            records[key] = reply
        else:
            merged = merge_replies(records[key], reply)
            merged.recipient = records[key].recipient
            records[key] = merged

    for reply in _json_records(parts.texts):
        add(reply.recipient, reply)
    own_texts = []
    for text in parts.texts:
        own, quoted = cut_original(text)
        own_texts.append(own)
        if quoted.strip():
            parts.original.append(quoted)
    if not parts.dsn:
        # A delivery-status body that the MIME structure did not separate (a broken boundary).
        for text in own_texts:
            if "final-recipient:" in text.lower():
                parts.dsn.extend(dsn_recipients(_field_pairs(text)))
    failed_hdr = PATTERNS["addr"].findall(_header(msg, "X-Failed-Recipients"))
    # A DSN may also report successful deliveries (RFC 3464 section 2.3.3); they are not
    # failures, unless the report holds nothing else.
    failures = [f for f in parts.dsn if squash(f.get("action", "")).lower() not in
                ("delivered", "relayed", "expanded")]
    parts.dsn = failures or parts.dsn
    for fields in parts.dsn:
        recipient, reply = _dsn_record(fields)
        if recipient and "@" not in recipient and len(failed_hdr) == 1:
            recipient = failed_hdr[0]  # a file or pipe as Final-Recipient (Exim): the address
        add(recipient, reply)
    from_dsn = set(order)
    blocks = [b for t in own_texts for b in text_blocks(t)]
    senders = _sender_addresses(msg)
    if any(b.recipient.lower() not in senders for b in blocks):
        # The bounce's own From/To/Reply-To named on a line is context, not a failure.
        blocks = [b for b in blocks if b.recipient.lower() not in senders]
    for block in blocks:
        if from_dsn and block.recipient.lower() not in from_dsn:
            continue  # the DSN lists the failed recipients; other addresses are context
        reply = block_reply(block.lines) or Reply(None, None, squash(" ".join(block.lines)),
                                                   source="bounce")
        reply.server = find_server("\n".join(block.lines))
        add(block.recipient, reply)
    if not records and bounce_like:
        _fallback(msg, own_texts, parts, add)
    if not bounce_like and all(r.code is None and r.enhanced is None
                               for r in records.values()):
        return []
    full_text = "\n".join(own_texts)
    out = []
    # One recipient, or several whose blocks state no reply (Gmail lists the addresses, then
    # the server's reply once): the reply the whole text states is theirs.
    shared = len(records) == 1 or all(r.code is None for r in records.values())
    for key in order:
        reply = records[key]
        reply.source = "dsn" if parts.dsn else "bounce"
        if reply.code is None and shared:
            # No reply in the recipient's block or DSN: the whole text may still state one,
            # and its words are all there is to read.
            whole = parse_reply(full_text, source="bounce")
            if whole is not None and whole.code is not None and whole.code >= 400:
                whole.recipient, whole.action = reply.recipient, reply.action
                own_words = reply.text
                reply = merge_replies(whole, reply)
                if len(records) > 1 and own_words.strip():
                    reply.text = own_words  # the shared code, but this recipient's words
            elif full_text.strip() and (len(records) == 1 or not reply.text.strip()):
                # Another recipient's words are not this one's reason.
                reply.text = squash(reply.text + " " + full_text)[:4000]
            reply.source = "dsn" if parts.dsn else "bounce"
        if reply.code is None and reply.enhanced is None:
            reply.fallback_class = _class_from_words(full_text + " " + reply.text, reply.action)
            if not reply.text:
                reply.text = squash(full_text)[:2000]
        if reply.server is None:
            reply.server = find_server(reply.text)
        out.append(reply)
    return out


def _fallback(msg: email.message.Message, own_texts: list[str], parts: _Parts,
              add: Callable[[str | None, Reply | None], None]) -> None:
    """No DSN and no per-recipient block: the failed addresses the bounce names, with the
    reply its text states."""
    text = "\n".join(own_texts)
    exclude = _sender_addresses(msg)
    for orig in parts.original:
        if isinstance(orig, email.message.Message):
            exclude.update(a.lower() for a in PATTERNS["addr"].findall(_header(orig, "From")))
    recipients: list[str] = []
    failed = _header(msg, "X-Failed-Recipients")
    nested = [] if failed else _nested_bounce(parts)
    for reply in nested:
        add(reply.recipient, reply)
    if nested:
        return
    # A quoted transcript names the recipients (RCPT TO) and the sender (MAIL FROM); otherwise
    # bounce texts mark the failed address with angle brackets, when they mark it at all.
    exclude.update(a.lower() for a in PATTERNS["mail_from"].findall(text))
    candidates = (PATTERNS["addr"].findall(failed) or PATTERNS["rcpt_to"].findall(text)
                  or PATTERNS["angled"].findall(text) or PATTERNS["addr"].findall(text))
    for system_ok in (False, True):  # postmaster@ may be the recipient, if nobody else is
        for addr in candidates:
            if addr.lower() in exclude or (
                    not system_ok and SYSTEM_LOCALS.match(addr.split("@")[0])):
                continue
            if addr.lower() not in (r.lower() for r in recipients):
                recipients.append(addr)
        if recipients:
            break
    if not recipients:
        for orig in parts.original:
            if isinstance(orig, email.message.Message):
                recipients.extend(PATTERNS["addr"].findall(_header(orig, "To")))
    stated = parse_reply(text, source="bounce")
    for addr in recipients:
        add(addr, Reply(stated.code, stated.enhanced, stated.text, source="bounce")
            if stated else Reply(None, None, "", source="bounce"))


def _nested_bounce(parts: _Parts) -> list[Reply]:
    """A bounce forwarded as an attachment or quoted inline, when the outer message says
    nothing itself (a helpdesk or list forwarding the MTA's report)."""
    for orig in parts.original:
        inner: email.message.Message | None = orig if isinstance(
            orig, email.message.Message) else None
        if isinstance(orig, str):
            body = orig.split("\n", 1)[1] if orig.startswith("---") else orig
            body = body.lstrip("\n")
            if looks_like_message(body):
                inner = email.message_from_string(body)
        if inner is not None and is_bounce(inner):
            found = read_message(inner)
            if found:
                return found
    return []
