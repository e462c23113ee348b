"""Plain-text bounce layouts: where each failed recipient's block is, and where the quoted
original starts.

Per MTA: Postfix and qmail ``<addr>:`` then the lines below, OpenSMTPD ``addr: 550 ...``,
Exim's indented address, Sendmail's ``550 5.1.1 <addr>... User unknown`` and
``>>> RCPT To:<addr>`` transcripts, Exchange's ``addr on DATE``, Zoho's ``addr Invalid
Address, ...``. Pure functions over str (a hypothesis test holds them to never raising).
"""

from __future__ import annotations

import re

from smtpcli.codes.parse import Reply, parse_reply, rx

_ADDR = r"(?:\"[^\"\s@]+\"|[\w.!#$%&'*+=?^`{|}~-]+)@[\w-]+(?:\.[\w-]+)+"
PATTERNS = {
    # "<addr>:" or "<addr>" at the start of a line (Postfix, qmail, Yahoo, x2, Sendmail lists).
    "angle_anchor": re.compile(rf"^[ \t]*\"?<({_ADDR})>\"?:?(?:[ \t]+(.*))?$"),
    # "addr Invalid Address, ERROR_CODE :550, ..." (Zoho): the address, then what failed.
    "lead_anchor": re.compile(rf"^({_ADDR})[ \t]+((?:Invalid|Unknown|User|Mailbox|"
                              rf"Recipient|Address|Error|Delivery|Message)\b.*)$", re.I),
    # "addr: 550 ..." (OpenSMTPD), "addr:" alone (some carriers).
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
    "dsn_field": re.compile(r"^(?:Reporting-MTA|Final-Recipient|Original-Recipient|"
                            r"Arrival-Date|X-Postfix-Queue-ID):", re.I),
    "header_line": re.compile(
        r"^(?:Received|Return-Path|From|Subject|Message-I[dD]|Date|To|MIME-Version|"
        r"Content-Type|DKIM-Signature|X-[\w-]+|Authentication-Results):", re.I),
}
# Addresses that send or relay bounces, never a failed recipient.
SYSTEM_LOCALS = re.compile(r"^(?:mailer-daemon|postmaster|maildelivery|mail-daemon|"
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


def cut_original(text: str) -> tuple[str, str]:
    """(the bounce's own text, the quoted original below it) of a plain-text bounce."""
    lines = text.replace("\r", "").split("\n")
    for i, line in enumerate(lines):
        if i and PATTERNS["original"].match(line):
            return "\n".join(lines[:i]), "\n".join(lines[i:])
        # A block of header fields (two in a row, not indented) starts the original, unless
        # it is the delivery-status fields of a report whose MIME boundary is broken.
        if (i and PATTERNS["header_line"].match(line) and i + 1 < len(lines)
                and (PATTERNS["header_line"].match(lines[i + 1]) or lines[i + 1][:1] in (" ", "\t"))
                and not line.lower().startswith(("to:", "subject:", "date:"))
                and not any(PATTERNS["dsn_field"].match(near) for near in lines[max(0, i - 3):i + 6])):
            return "\n".join(lines[:i]), "\n".join(lines[i:])
    return "\n".join(lines), ""


class Block:
    """One failed recipient's lines in a plain-text bounce."""

    __slots__ = ("recipient", "lines", "indent")

    def __init__(self, recipient: str, first: str | None, indent: int) -> None:
        self.recipient = recipient
        self.lines = [first] if first else []
        self.indent = indent


def _anchor(line: str) -> tuple[str, str | None] | None:
    """(recipient, rest of the line) when ``line`` starts a per-recipient block."""
    for name in ("rcpt_anchor", "sendmail_line", "angle_anchor", "colon_anchor",
                 "alone_anchor", "lead_anchor"):
        m = PATTERNS[name].match(line)
        if m:
            rest = m.group(2) if m.re.groups >= 2 else None
            if name == "sendmail_line":
                rest = line.strip().lstrip("<").strip()
            return m.group(1), rest
    return None


def text_blocks(text: str) -> list[Block]:
    """Per-recipient blocks of a plain-text bounce: an anchor line, then the lines below up to
    the next anchor or a blank line followed by unindented prose."""
    blocks: list[Block] = []
    current: Block | None = None
    blank = False
    for line in text.split("\n"):
        anchor = _anchor(line)
        indent = len(line) - len(line.lstrip())
        if anchor is not None and current is not None and not blank and (
                indent > current.indent and anchor[0].lower() == current.recipient.lower()):
            anchor = None  # a wrapped line that repeats the address (Postfix: "    <a>: ...")
        if anchor is not None and not SYSTEM_LOCALS.match(anchor[0].split("@")[0]):
            current = Block(anchor[0], anchor[1], indent)
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


def block_reply(lines: list[str]) -> Reply | None:
    text = "\n".join(line.lstrip("<> ").rstrip() if line.startswith(("<<<", ">>>")) else line
                     for line in lines)
    return parse_reply(text, source="bounce") if text.strip() else None


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


def merge_replies(best: Reply, other: Reply) -> Reply:
    """The reply that says more; a generic enhanced code (X.0.0) gives way to a specific one."""
    winner, loser = (other, best) if _quality(other) > _quality(best) else (best, other)
    if loser.enhanced and (winner.enhanced is None or (
        winner.enhanced.endswith(".0.0") and not loser.enhanced.endswith(".0.0"))
    ) and (winner.code is None or str(winner.code)[0] == loser.enhanced[0]):
        winner.enhanced = loser.enhanced
    if not winner.action:
        winner.action = loser.action
    if not winner.server:
        winner.server = loser.server
    if not winner.text and loser.text:
        winner.text = loser.text
    return winner


def text_replies(text: str) -> list[Reply]:
    """The per-recipient replies of a pasted bounce text (no message headers): its MTA
    blocks, one per recipient, duplicates merged; [] when it has none."""
    merged: dict[str, Reply] = {}
    if looks_like_message(text):  # pasted with its header fields: the body is the bounce
        text = text.replace("\r", "").partition("\n\n")[2]
    for block in text_blocks(cut_original(text)[0]):
        reply = block_reply(block.lines)
        if reply is None:
            continue
        reply.recipient = block.recipient
        key = block.recipient.lower()
        merged[key] = merge_replies(merged[key], reply) if key in merged else reply
    for reply in merged.values():
        reply.source = "bounce"
    return list(merged.values())


def find_server(text: str) -> str | None:
    """The host that replied, as a bounce names it ("mx.example.com [192.0.2.1] said",
    "host mx.example.com"), or None."""
    m = PATTERNS["server"].search(text)
    return (m.group(1) or m.group(2)).rstrip(".") if m else None
