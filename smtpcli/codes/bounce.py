"""Read a bounce message: one Reply per failed recipient.

Sources, merged per recipient (first appearance decides the order):
- the RFC 3464 delivery-status part (Final-Recipient, Action, Status, Diagnostic-Code);
- the human-readable text: the per-recipient blocks of the common MTA layouts (Postfix and
  qmail ``<addr>:``, OpenSMTPD ``addr: 550 ...``, Exim's indented address, Sendmail's
  ``550 5.1.1 <addr>... User unknown`` and ``>>> RCPT To:<addr>`` transcripts, Exchange's
  ``addr on DATE``), or, when none is found, the failed addresses the text names;
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

from smtpcli.codes.parse import (
    Reply,
    _field_pairs,
    delivery_status_blocks,
    dsn_recipients,
    parse_reply,
    rx,
    squash,
)

_ADDR = r"(?:\"[^\"\s@]+\"|[\w.!#$%&'*+=?^`{|}~-]+)@[\w-]+(?:\.[\w-]+)+"
_RX = {
    # "<addr>:" or "<addr>" at the start of a line (Postfix, qmail, Yahoo, x2, Sendmail lists).
    "angle_anchor": re.compile(rf"^[ \t]*\"?<({_ADDR})>\"?:?(?:[ \t]+(.*))?$"),
    # "addr: 550 ..." (OpenSMTPD), "addr:" alone (some carriers).
    "lead_anchor": re.compile(rf"^({_ADDR})[ \t]+((?:Invalid|Unknown|User|Mailbox|"
                              rf"Recipient|Address|Error|Delivery|Message)\b.*)$", re.I),
    "colon_anchor": re.compile(rf"^[ \t]*\"?({_ADDR})\"?:(?:[ \t]+(.*))?$"),
    # An address alone on its line, maybe "(generated from ...)" or Exchange's "on DATE".
    "alone_anchor": re.compile(
        rf"^[ \t]*(?:(?:RCPT TO|RCPT|Recipient|Address|Recipient address|Original-Recipient)"
        rf"[ \t]*:[ \t]*)?<?({_ADDR})>?[ \t]*(?:\(.*\)|on [^@]*|,)?[ \t]*$", re.I),
    # Sendmail transcripts: ">>> RCPT To:<addr>" and "550 5.1.1 <addr>... User unknown".
    "rcpt_anchor": re.compile(rf"^[ \t]*>>>[ \t]*RCPT TO:[ \t]*<?({_ADDR})>?", re.I),
    "sendmail_line": re.compile(rf"^[ \t]*(?:<<<[ \t]*)?[45]\d\d[ -](?:[45]\.\d+\.\d+ )?"
                                rf"[ \t]*<({_ADDR})>\.\.\.[ \t]*(.*)$"),
    "addr": re.compile(_ADDR),
    # The server that replied: "mx.example.com [192.0.2.1] said", "host mx.example.com".
    "server": re.compile(r"([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})\.?\s*\[(?:IPv6:)?"
                         r"[0-9a-fA-F.:]+\]|\bhost:?\s+([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
                         r"\.[A-Za-z]{2,})\b", re.I),
    "angled": re.compile(rf"<({_ADDR})>"),
    "rcpt_to": re.compile(rf"RCPT TO:\s*<({_ADDR})>", re.I),
    "mail_from": re.compile(rf"MAIL\s+FROM:\s*<({_ADDR})>", re.I),
    # Where a plain-text bounce starts quoting the original message (RFC 3462 section 2 puts
    # it in its own part; plain-text MTAs append it below one of these lines).
    "original": re.compile(
        r"^[ \t]*(?:-+ ?)?(?:Below this line is a copy of the message|"
        r"This is a copy of the message|Original message (?:follows|headers?)|"
        r"-+ ?Original message ?-+|Unsent message follows|Message headers follow|"
        r"Below is a copy of the original message|The header of the original message|"
        r"Your message reads|-+ ?(?:Returned|Original) mail ?-+|"
        r"Content-Type: message/rfc822|original message below|"
        r"headers of your message follow|Here is a copy of the first part|"
        r"The text of your message|Original (?:message|mail)\b.{0,20}(?:follows|below))",
        re.I),
    "header_line": re.compile(
        r"^(?:Received|Return-Path|From|Subject|Message-I[dD]|Date|To|MIME-Version|"
        r"Content-Type|DKIM-Signature|X-[\w-]+|Authentication-Results):", re.I),
    "tag": re.compile(r"<(?:style|script|head)\b.*?</(?:style|script|head)>|<[^>]+>", re.I | re.S),
    "transient_words": re.compile(r"will (?:retry|try again|continue trying|keep trying)|"
                                  r"delayed|not yet been delivered|temporar|transient|"
                                  r"warning: message still undelivered", re.I),
    "bounce_subject": re.compile(
        r"undeliver|returned|failure|failed|delivery (?:status|notification|report)|"
        r"not delivered|bounce|non.?delivery|could not be delivered|mail delivery|"
        r"delivery problem|error|warning|rejected|returning message|loop|"
        r"\u914d\u4fe1|\u30a8\u30e9\u30fc|\u4e0d\u80fd|\u5931\u6557", re.I),
    "daemon": re.compile(r"mailer-daemon|post_?master|mail delivery|maildelivery|"
                         r"bounce|daemon|mail administrator", re.I),
    "list_admin": re.compile(r"[-_.](?:admin|owner|request)@|^owner-", re.I),
}
_SKIP_PARTS = {"message/rfc822", "text/rfc822-headers", "message/rfc822-headers",
               "message/global", "message/global-headers", "message/partial",
               "message/external-body"}
_DSN_PARTS = {"message/delivery-status", "message/global-delivery-status"}
# Addresses that send or relay bounces, never a failed recipient.
_SYSTEM_LOCALS = re.compile(r"^(?:mailer-daemon|postmaster|maildelivery|mail-daemon|"
                            r"double-bounce|bounce[s]?)(?:[+=].*)?$", re.I)


def looks_like_message(text: str) -> bool:
    """Input that starts with RFC 5322 header fields (a message file, not a pasted reply)."""
    head = text.lstrip("\ufeff")[:2000].replace("\r", "")
    first = head.split("\n", 1)[0]
    if first.startswith("From ") and "\n" in head:  # mbox "From " line
        first = head.split("\n", 2)[1]
    lines = [first] + head.split("\n")[1:6]
    fields = sum(1 for line in lines if re.match(r"^[\w-]+:", line))
    return re.match(r"^[\w-]+:", first) is not None and fields >= 2


def _decode(part: email.message.Message) -> str:
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return raw.decode(charset, "replace")
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


def cut_original(text: str) -> tuple[str, str]:
    """(the bounce's own text, the quoted original below it) of a plain-text bounce."""
    lines = text.replace("\r", "").split("\n")
    for i, line in enumerate(lines):
        if i and _RX["original"].match(line):
            return "\n".join(lines[:i]), "\n".join(lines[i:])
        # A block of header fields (two in a row, not indented) starts the original.
        if (i and _RX["header_line"].match(line) and i + 1 < len(lines)
                and (_RX["header_line"].match(lines[i + 1]) or lines[i + 1][:1] in (" ", "\t"))
                and not line.lower().startswith(("to:", "subject:", "date:"))):
            return "\n".join(lines[:i]), "\n".join(lines[i:])
    return "\n".join(lines), ""


class _Block:
    __slots__ = ("recipient", "lines", "indent")

    def __init__(self, recipient: str, first: str | None, indent: int) -> None:
        self.recipient = recipient
        self.lines = [first] if first else []
        self.indent = indent


def _anchor(line: str) -> tuple[str, str | None] | None:
    """(recipient, rest of the line) when ``line`` starts a per-recipient block."""
    for name in ("rcpt_anchor", "sendmail_line", "angle_anchor", "colon_anchor",
                 "alone_anchor", "lead_anchor"):
        m = _RX[name].match(line)
        if m:
            rest = m.group(2) if m.re.groups >= 2 else None
            if name == "sendmail_line":
                rest = line.strip().lstrip("<").strip()
            return m.group(1), rest
    return None


def text_blocks(text: str) -> list[_Block]:
    """Per-recipient blocks of a plain-text bounce: an anchor line, then the lines below up to
    the next anchor or a blank line followed by unindented prose."""
    blocks: list[_Block] = []
    current: _Block | None = None
    blank = False
    for line in text.split("\n"):
        anchor = _anchor(line)
        indent = len(line) - len(line.lstrip())
        if anchor is not None and current is not None and not blank and (
                indent > current.indent and anchor[0].lower() == current.recipient.lower()):
            anchor = None  # a wrapped line that repeats the address (Postfix: "    <a>: ...")
        if anchor is not None and not _SYSTEM_LOCALS.match(anchor[0].split("@")[0]):
            current = _Block(anchor[0], anchor[1], indent)
            blocks.append(current)
            blank = False
            continue
        if current is None:
            continue
        if not line.strip():
            blank = True
            continue
        if blank and not (line[:1] in " \t" or rx("line_start").match(line)
                          or line.lstrip().startswith(("<<<", ">>>", "(", "Remote host",
                                                       "Giving up"))):
            current = None
            continue
        blank = False
        current.lines.append(line.strip())
    return blocks


def text_replies(text: str) -> list[Reply]:
    """The per-recipient replies of a pasted bounce text (no message headers): its MTA
    blocks, one per recipient, duplicates merged; [] when it has none."""
    merged: dict[str, Reply] = {}
    if looks_like_message(text):  # pasted with its header fields: the body is the bounce
        text = text.replace("\r", "").partition("\n\n")[2]
    for block in text_blocks(cut_original(text)[0]):
        reply = _block_reply(block.lines)
        if reply is None:
            continue
        reply.recipient = block.recipient
        key = block.recipient.lower()
        merged[key] = _merge(merged[key], reply) if key in merged else reply
    for reply in merged.values():
        reply.source = "bounce"
    return list(merged.values())


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


def _quality(reply: Reply | None) -> int:
    """How much a candidate reply says: a failure code, an enhanced code, a specific one."""
    if reply is None:
        return -1
    score = 0
    if reply.code is not None and reply.code >= 400:
        score += 4
    if reply.enhanced is not None and reply.enhanced[0] in "45":
        score += 2 if not reply.enhanced.endswith(".0.0") else 1
    return score


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


def _merge(best: Reply, other: Reply) -> Reply:
    """The reply that says more; a generic enhanced code (X.0.0) gives way to a specific one."""
    winner, loser = (other, best) if _quality(other) > _quality(best) else (best, other)
    if loser.enhanced and (winner.enhanced is None or (
        winner.enhanced.endswith(".0.0") and not loser.enhanced.endswith(".0.0"))
    ) and (winner.code is None or str(winner.code)[0] == loser.enhanced[0]):
        winner.enhanced = loser.enhanced
    if not winner.action:
        winner.action = loser.action
    if not winner.text and loser.text:
        winner.text = loser.text
    return winner


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


def _block_reply(lines: list[str]) -> Reply | None:
    text = "\n".join(line.lstrip("<> ").rstrip() if line.startswith(("<<<", ">>>")) else line
                     for line in lines)
    return parse_reply(text, source="bounce") if text.strip() else None


def _sender_addresses(msg: email.message.Message) -> set[str]:
    out: set[str] = set()
    for name in ("From", "Return-Path", "Reply-To", "Sender", "To", "Delivered-To",
                 "Errors-To"):
        out.update(a.lower() for a in _RX["addr"].findall(_header(msg, name)))
    return out


def is_bounce(msg: email.message.Message) -> bool:
    """A delivery report by its type, sender or subject (for --mailbox: others are skipped)."""
    if msg.get_content_type() == "multipart/report" or msg.get("X-Failed-Recipients"):
        return True
    sender = _header(msg, "From") + " " + _header(msg, "Return-Path")
    if _RX["daemon"].search(sender):
        return True
    payload = msg.get_payload()
    if isinstance(payload, str) and "bouncedRecipients" in payload:
        return True  # an Amazon SES bounce notification (JSON, maybe inside SNS)
    # Otherwise the subject must say so, and the envelope sender be null (RFC 5321 section
    # 4.5.5) or a list manager's address.
    senders = [a for a in _RX["addr"].findall(sender)]
    null_sender = "<>" in str(msg.get("Return-Path", "<>"))
    return bool(_RX["bounce_subject"].search(_header(msg, "Subject")) and (
        null_sender or any(_RX["list_admin"].search(a) for a in senders)))


def read_message(msg: email.message.Message) -> list[Reply]:
    """Every failed recipient of a bounce message, each with the reply that counts."""
    parts = _Parts()
    _collect(msg, parts)
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
            merged = _merge(records[key], reply)
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
    failed_hdr = _RX["addr"].findall(_header(msg, "X-Failed-Recipients"))
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
        reply = _block_reply(block.lines) or Reply(None, None, squash(" ".join(block.lines)),
                                                   source="bounce")
        add(block.recipient, reply)
    if not records:
        _fallback(msg, own_texts, parts, add)
    full_text = "\n".join(own_texts)
    out = []
    for key in order:
        reply = records[key]
        reply.source = "dsn" if parts.dsn else "bounce"
        if reply.code is None and len(records) == 1:
            # No reply in the recipient's block or DSN: the whole text may still state one,
            # and its words are all there is to read.
            whole = parse_reply(full_text, source="bounce")
            if whole is not None and whole.code is not None and whole.code >= 400:
                whole.recipient, whole.action = reply.recipient, reply.action
                reply = _merge(whole, reply)
            elif full_text.strip():
                reply.text = squash(reply.text + " " + full_text)[:4000]
            reply.source = "dsn" if parts.dsn else "bounce"
        if reply.code is None and reply.enhanced is None:
            reply.fallback_class = _class_from_words(full_text + " " + reply.text, reply.action)
            if not reply.text:
                reply.text = squash(full_text)[:2000]
        if reply.server is None:
            m = _RX["server"].search(reply.text)
            reply.server = (m.group(1) or m.group(2)).rstrip(".") if m else None
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
            exclude.update(a.lower() for a in _RX["addr"].findall(_header(orig, "From")))
    recipients: list[str] = []
    failed = _header(msg, "X-Failed-Recipients")
    nested = [] if failed else _nested_bounce(parts)
    for reply in nested:
        add(reply.recipient, reply)
    if nested:
        return
    # A quoted transcript names the recipients (RCPT TO) and the sender (MAIL FROM); otherwise
    # bounce texts mark the failed address with angle brackets, when they mark it at all.
    exclude.update(a.lower() for a in _RX["mail_from"].findall(text))
    candidates = (_RX["addr"].findall(failed) or _RX["rcpt_to"].findall(text)
                  or _RX["angled"].findall(text) or _RX["addr"].findall(text))
    for system_ok in (False, True):  # postmaster@ may be the recipient, if nobody else is
        for addr in candidates:
            if addr.lower() in exclude or (
                    not system_ok and _SYSTEM_LOCALS.match(addr.split("@")[0])):
                continue
            if addr.lower() not in (r.lower() for r in recipients):
                recipients.append(addr)
        if recipients:
            break
    if not recipients:
        for orig in parts.original:
            if isinstance(orig, email.message.Message):
                recipients.extend(_RX["addr"].findall(_header(orig, "To")))
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
