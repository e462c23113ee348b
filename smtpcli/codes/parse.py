"""Find SMTP replies in text: bare codes, reply lines, multi-line replies, pasted bounces and
RFC 3464 delivery status notifications (one reply per recipient).

Pure functions over strings; they never raise for odd input (a hypothesis test holds them to it).
"""

from __future__ import annotations

import re
from typing import Any

# Patterns, compiled on first use (start-up time matters for `smtpcli explain`).
_PATTERNS = {
    # RFC 3463 section 2: class "." subject "." detail, subject and detail 1-3 digits. The
    # look-arounds keep IPv4 addresses (192.0.2.4) and versions (4.16.55.1) from matching.
    # In a bounce, parse_reply also drops subjects above 7 (RFC 3463 section 4 defines 0-7),
    # which keeps parts of addresses and versions ("2.753.1") out.
    "enhanced": (r"(?<![\w./])#?([245])\.(\d{1,3})\.(\d{1,3})(?![\w]|\.\d)", 0),
    # RFC 5321 section 4.2: three digits, then SP or "-" (continuation) or end of line.
    "basic": (r"(?<![\w.\-/#:@\[(=+])([2-5]\d\d)(?=[ \t-]|$)", re.M),
    # Quoting and transcript marks before a code: "> 550", "<<< 550", "| 550", "#550" (Exchange).
    "line_start": (r"^[ \t>|<#]*([2-5]\d\d)(?=[ \t-]|$)", re.M),
    "marker": (r"(?:said:|smtp;|reason:|returned '|error:|response:|replied:|remote server:|"
               r"mail server after [^:]+:(?:<[^>]*>:)?|command:|talk to me:|(?:error[_ ]?)?code\s*:)\s*"
               r"([2-5]\d\d)(?=[ \t,;-]|$)",
               re.I),
    "cont": (r"^[ \t>|<]*([2-5]\d\d)([ \t-])[ \t]?(.*)$", 0),
    # A reply that starts mid-line ("... after end of data: 421-4.7.0 ...") and continues below.
    "mid_cont": (r"(?:^|[\s:;'])([2-5]\d\d)-(?:([245]\.\d{1,3}\.\d{1,3})(?=\s))?", 0),
    "bare": (r"^(?:\s|#|[2-5]\d\d\b|[245]\.\d{1,3}\.\d{1,3}\b)*$", 0),
}
_COMPILED: dict[str, re.Pattern[str]] = {}


def rx(name: str) -> re.Pattern[str]:
    """The compiled pattern ``name`` of _PATTERNS."""
    compiled = _COMPILED.get(name)
    if compiled is None:
        source, flags = _PATTERNS[name]
        compiled = _COMPILED[name] = re.compile(source, flags)
    return compiled


class Reply:
    """One reply to explain; ``recipient``/``action`` come from a DSN or a bounce block.

    A plain class, not a dataclass: this module is on the `smtpcli explain` start-up path."""

    __slots__ = ("code", "enhanced", "text", "recipient", "action", "source", "fallback_class",
                 "server")

    def __init__(self, code: int | None, enhanced: str | None, text: str,
                 recipient: str | None = None, action: str | None = None,
                 source: str = "reply") -> None:
        self.code = code
        self.enhanced = enhanced
        self.text = text
        self.recipient = recipient
        self.action = action
        self.source = source  # "code", "reply", "bounce" or "dsn"
        # For a bounce that states no code: "4" or "5" from its DSN action or wording.
        self.fallback_class: str | None = None
        self.server: str | None = None  # the host that gave the reply, when a bounce says

    def __repr__(self) -> str:
        return (f"Reply(code={self.code!r}, enhanced={self.enhanced!r}, text={self.text!r}, "
                f"recipient={self.recipient!r}, action={self.action!r})")

    @property
    def bare(self) -> bool:
        """True when the text is nothing but codes (no wording a provider rule could match)."""
        return bool(rx("bare").match(self.text))


def squash(text: str) -> str:
    return " ".join(text.split())


def join_continuations(text: str) -> str:
    """Join a multi-line reply (``550-5.7.26 ...`` lines then ``550 5.7.26 ...``) into one line.

    RFC 5321 section 4.2.1: every line but the last has "-" after the code. Servers such as
    Gmail repeat the enhanced code on each line; only the first copy is kept.
    """
    text = text.replace("\\n", "\n").replace("\r", "")
    out: list[str] = []
    current: tuple[str, str | None] | None = None  # (code, enhanced) of the reply being joined
    for line in text.split("\n"):
        if current is not None and not line.strip():
            continue  # some MTAs (DragonFly) put blank lines between the lines of a reply
        m = rx("cont").match(line)
        if m and current is not None and m.group(1) == current[0]:
            rest = m.group(3)
            if current[1] and rest.startswith(current[1]):
                rest = rest[len(current[1]):].lstrip()
            out[-1] = out[-1] + " " + rest
            current = current if m.group(2) == "-" else None
            continue
        out.append(line)
        if m:
            em = rx("enhanced").match(m.group(3))
            enhanced = em.group(0) if em else None
            current = (m.group(1), enhanced) if m.group(2) == "-" else None
        else:
            mids = list(rx("mid_cont").finditer(line))
            current = (mids[-1].group(1), mids[-1].group(2)) if mids else None
    return "\n".join(out)


def _enhanced(m: re.Match[str]) -> str:
    return f"{m.group(1)}.{int(m.group(2))}.{int(m.group(3))}"


def _basic_candidates(joined: str) -> list[re.Match[str]]:
    """Basic codes in reading order: at a line start, after a marker ("said:", "smtp;"), or
    anywhere when an enhanced code follows ("... 550 5.7.1 ...")."""
    found = list(rx("line_start").finditer(joined)) + list(rx("marker").finditer(joined))
    for m in rx("basic").finditer(joined):
        if rx("enhanced").match(joined, m.end() + 1):
            found.append(m)
    found.sort(key=lambda m: m.start(1))
    return found


def _pick_basic(found: list[re.Match[str]]) -> re.Match[str] | None:
    """The failure, not the greeting or a 250 before it in a quoted transcript: the last
    4xx/5xx reply (what the session ended on), else the first code."""
    for m in reversed(found):
        if m.group(1)[0] in "45":
            return m
    return found[0] if found else None


def parse_reply(text: str, source: str = "reply") -> Reply | None:
    """The basic and enhanced code of one reply (either may be missing); None if neither."""
    joined = join_continuations(text)
    basic_m = _pick_basic(_basic_candidates(joined))
    code = int(basic_m.group(1)) if basic_m else None
    strict = source in ("bounce", "dsn")

    def valid(m: re.Match[str] | None) -> bool:
        return m is not None and (not strict or int(m.group(2)) <= 7)

    enhanced: str | None = None
    if basic_m is not None:
        after = rx("enhanced").match(joined, basic_m.end(1) + 1)
        if after is not None and valid(after):
            enhanced = _enhanced(after)
    if enhanced is None:
        # The first enhanced code of the reply's class (a 2.0.0 in a transcript is not it).
        wanted = str(code)[0] if code is not None else "45"
        for anywhere in rx("enhanced").finditer(joined):
            if anywhere.group(1) in wanted and valid(anywhere):
                enhanced = _enhanced(anywhere)
                break
        if enhanced is None and code is None and not strict:
            first = rx("enhanced").search(joined)
            enhanced = _enhanced(first) if first else None
    if code is None and enhanced is None:
        return None
    flat = squash(joined)
    if code is not None and enhanced is not None:
        # Postfix flattens a multi-line reply: "... at a rate that 550-5.2.1 prevents ...".
        repeat = re.compile(rf"(?<=\S) {code}[ -]#?{re.escape(enhanced)}(?= )")
        first = re.search(rf"\b{code}[ -]#?{re.escape(enhanced)}\b", flat)
        if first is not None:
            flat = flat[:first.end()] + repeat.sub("", flat[first.end():])
    reply = Reply(code=code, enhanced=enhanced, text=flat, source=source)
    if source == "reply" and reply.bare:
        reply.source = "code"
    return reply


def _address(value: str | None) -> str | None:
    """``rfc822; user@example.com`` -> ``user@example.com`` (RFC 3464 section 2.3.2)."""
    if not value:
        return None
    _, sep, addr = value.partition(";")
    return squash(addr if sep else value).strip("<>") or None


def _dsn_reply(fields: dict[str, str]) -> Reply | None:
    diag = fields.get("diagnostic-code", "")
    diag_type, sep, diag_text = diag.partition(";")
    if sep and diag_type.strip().lower() == "x-unix":
        # A local program's exit status (X-Unix; 255), not an SMTP reply (RFC 3464 2.3.6).
        diag_text = f"local delivery program exit status {diag_text.strip()}"
    # Keep the folded lines apart so that multi-line replies (550-5.1.1 ...) are joined right.
    diag_text = "\n".join(line.strip() for line in (diag_text if sep else diag).splitlines())
    diag_text = diag_text.strip()
    status = squash(fields.get("status", ""))
    reply = parse_reply(diag_text, source="dsn") if diag_text else None
    status_m = rx("enhanced").search(status)
    status_code = _enhanced(status_m) if status_m else None
    if reply is None:
        if status_code is None:
            return None
        reply = Reply(code=None, enhanced=status_code, text=diag_text or status, source="dsn")
    elif reply.enhanced is None or (reply.enhanced.endswith(".0.0") and status_code):
        reply.enhanced = status_code or reply.enhanced
    reply.recipient = _address(fields.get("final-recipient")) or _address(
        fields.get("original-recipient"))
    action = squash(fields.get("action", "")).lower()
    reply.action = action or None
    return reply


def _field_pairs(text: str) -> list[list[tuple[str, str]]]:
    """RFC 822-style field blocks separated by blank lines (RFC 3464 section 2.1), each as
    (lowercased name, value) pairs in order; folded lines stay on their own lines."""
    blocks: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for line in text.replace("\r", "").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
            current = []
        elif line[0] in " \t" and current:
            name, value = current[-1]
            current[-1] = (name, value + "\n" + line.strip())
        else:
            name, sep, value = line.partition(":")
            if sep and name.strip() and " " not in name.strip():
                current.append((name.strip().lower(), value.strip()))
    if current:
        blocks.append(current)
    return blocks


def dsn_recipients(blocks: list[list[tuple[str, str]]]) -> list[dict[str, str]]:
    """The per-recipient field groups of a delivery-status body.

    RFC 3464 puts a blank line between groups; some MTAs (AOL) do not, or glue the
    per-message fields to the first recipient, so a repeated Final-/Original-Recipient also
    starts a new group."""
    groups: list[dict[str, str]] = []
    for block in blocks:
        current: dict[str, str] = {}
        for name, value in block:
            other = "original-recipient" if name == "final-recipient" else "final-recipient"
            starts = name in ("final-recipient", "original-recipient") and (
                name in current or (other in current and (
                    "action" in current or "status" in current)))
            if starts and current:
                groups.append(current)
                current = {}
            current.setdefault(name, value)
        groups.append(current)
    return [g for g in groups if "final-recipient" in g or "original-recipient" in g]


def dsn_from_text(text: str) -> list[Reply]:
    replies = []
    for fields in dsn_recipients(_field_pairs(text)):
        reply = _dsn_reply(fields)
        if reply is not None:
            replies.append(reply)
    return replies


def dsn_from_mime(text: str) -> list[Reply]:
    """Delivery-status parts of a MIME message (RFC 3464 / RFC 6533), decoded by the email
    package so that base64 or quoted-printable parts work too."""
    import email

    msg = email.message_from_string(text)
    replies: list[Reply] = []
    for part in msg.walk():
        if part.get_content_type() not in ("message/delivery-status",
                                           "message/global-delivery-status"):
            continue
        for fields in dsn_recipients(delivery_status_blocks(part)):
            reply = _dsn_reply(fields)
            if reply is not None:
                replies.append(reply)
    return replies


def delivery_status_blocks(part: Any) -> list[list[tuple[str, str]]]:
    """The field blocks of a message/delivery-status part, parsed or not by the email package."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [[(k.lower(), str(v)) for k, v in block.items()]
                for block in payload if hasattr(block, "items")]
    raw = part.get_payload(decode=True)
    body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)
    return _field_pairs(body)
