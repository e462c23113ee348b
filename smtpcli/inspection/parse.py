"""Tolerant message parsing: headers, body and findings for whatever is broken.

Any bytes parse: broken lines become findings (``msg.*``), never exceptions. The header split is
done here on raw bytes (RFC 5322 2.2, 2.2.3 folding) so that 8-bit or malformed headers cannot
stop the analysis; the stdlib ``email`` parser is asked only for MIME defects and addresses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import getaddresses, parsedate_to_datetime

from smtpcli.results import Finding, Status

# RFC 5322 3.6: fields that may appear at most once.
SINGLETONS = ("date", "from", "sender", "reply-to", "to", "cc", "bcc", "message-id",
              "in-reply-to", "references", "subject")
_FIELD_NAME = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:")
# RFC 5322 3.6.4 msg-id, loosely: <left@right> without spaces.
_MSG_ID = re.compile(r"^\s*<[^<>@\s]+@[^<>@\s]+>\s*$")
MAX_LINE = 998  # RFC 5322 2.1.1


@dataclass
class ParsedMessage:
    """A message split into headers and body, with what was wrong with it."""

    raw: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    findings: list[Finding] = field(default_factory=list)
    line_endings: str = "crlf"

    def get_all(self, name: str) -> list[str]:
        """Every value of a header field, top to bottom (unfolded)."""
        low = name.lower()
        return [v for n, v in self.headers if n.lower() == low]

    def get(self, name: str) -> str | None:
        values = self.get_all(name)
        return values[0] if values else None

    @property
    def from_addresses(self) -> list[str]:
        out: list[str] = []
        for value in self.get_all("from"):
            out += [addr for _, addr in getaddresses([value]) if addr]
        return out

    @property
    def from_domain(self) -> str | None:
        """The RFC5322.From domain (DMARC's identifier), when there is exactly one address."""
        addrs = self.from_addresses
        if len(addrs) != 1 or "@" not in addrs[0]:
            return None
        return addrs[0].rsplit("@", 1)[1].strip().rstrip(".").lower() or None

    @property
    def date(self) -> datetime | None:
        return parse_date(self.get("date"))


def parse_date(value: str | None) -> datetime | None:
    """An RFC 5322 date-time, or None when missing or unparsable (timezone-aware)."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None or parsed.tzinfo is None:
        return None
    return parsed


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _split_lines(raw: bytes) -> tuple[list[bytes], str]:
    crlf = raw.count(b"\r\n")
    lf = raw.count(b"\n") - crlf
    endings = "lf" if crlf == 0 and lf else ("mixed" if crlf and lf else "crlf")
    return re.split(rb"\r?\n", raw), endings


def parse_message(raw: bytes) -> ParsedMessage:
    """Split ``raw`` into headers and body; every defect becomes a finding."""
    msg = ParsedMessage(raw=raw)
    add = msg.findings.append
    if not raw.strip():
        add(Finding("msg.empty", Status.FAIL, "the message is empty"))
        return msg
    lines, msg.line_endings = _split_lines(raw)
    if msg.line_endings == "mixed":
        add(Finding("msg.bare-lf", Status.WARN, "lines end in a mix of CRLF and bare LF",
                    detail="SMTP forbids bare LF (RFC 5321 2.3.8); receivers may reject the "
                    "message or break DKIM signatures when they repair it.",
                    reference="RFC 5321 2.3.8"))
    elif msg.line_endings == "lf":
        add(Finding("msg.bare-lf", Status.INFO, "lines end in bare LF (a file saved on Unix?)",
                    detail="Read as CRLF for DKIM, as a receiver would have seen it on the wire.",
                    reference="RFC 5321 2.3.8"))
    if b"\x00" in raw:
        add(Finding("msg.nul-bytes", Status.WARN, "the message contains NUL bytes",
                    reference="RFC 5322 2.1"))
    long_lines = sum(1 for line in lines if len(line) > MAX_LINE)
    if long_lines:
        add(Finding("msg.line-too-long", Status.WARN,
                    f"{long_lines} line(s) longer than {MAX_LINE} octets",
                    reference="RFC 5322 2.1.1"))
    index = _read_headers(msg, lines)
    msg.body = b"\r\n".join(lines[index:])
    _check_header_bytes(msg)
    _check_fields(msg)
    _check_mime(msg)
    return msg


def _read_headers(msg: ParsedMessage, lines: list[bytes]) -> int:
    """Fill msg.headers; return the index of the first body line."""
    raw_headers: list[list[bytes]] = []
    bad: list[str] = []
    i = 0
    if lines and lines[0].startswith(b"From "):
        msg.findings.append(Finding("msg.mbox-from-line", Status.INFO,
                                    "starts with an mbox 'From ' line (ignored)"))
        i = 1
    separator = False
    while i < len(lines):
        line = lines[i]
        if line == b"":
            separator = True
            i += 1
            break
        if line[:1] in (b" ", b"\t"):
            if raw_headers:
                raw_headers[-1].append(line)
            else:
                bad.append(_decode(line)[:80])
        elif _FIELD_NAME.match(line):
            raw_headers.append([line])
        elif not raw_headers:
            # No header yet and this is not one: the whole thing is a body without headers.
            break
        else:
            bad.append(_decode(line)[:80])
        i += 1
    if not separator and i >= len(lines) and raw_headers:
        msg.findings.append(Finding("msg.no-body", Status.INFO,
                                    "no empty line after the header (no body)",
                                    reference="RFC 5322 2.1"))
    if bad:
        msg.findings.append(Finding(
            "msg.malformed-header", Status.WARN,
            f"{len(bad)} header line(s) are neither 'Name: value' nor a continuation",
            detail="\n".join(bad[:5]), reference="RFC 5322 2.2",
        ))
    for parts in raw_headers:
        first = parts[0]
        name, _, value = first.partition(b":")
        unfolded = b" ".join([value.strip(b" \t")] + [p.strip(b" \t") for p in parts[1:]])
        msg.headers.append((_decode(name.strip()), _decode(unfolded).strip()))
    if not msg.headers:
        msg.findings.append(Finding("msg.no-headers", Status.FAIL,
                                    "no header fields found: is this a message?",
                                    reference="RFC 5322 2.1"))
    return i


def _check_header_bytes(msg: ParsedMessage) -> None:
    head = msg.raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    if not any(b > 0x7F for b in head):
        return
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        msg.findings.append(Finding(
            "msg.8bit-headers", Status.WARN, "header fields contain 8-bit bytes that are not UTF-8",
            detail="Headers must be ASCII (RFC 5322 2.2), or UTF-8 with SMTPUTF8 (RFC 6532); "
            "use RFC 2047 encoded-words.", reference="RFC 5322 2.2, RFC 6532",
        ))
    else:
        msg.findings.append(Finding(
            "msg.utf8-headers", Status.INFO, "header fields contain raw UTF-8",
            detail="Valid only when the message travelled with SMTPUTF8.", reference="RFC 6532",
        ))


def _check_fields(msg: ParsedMessage) -> None:
    add = msg.findings.append
    counts: dict[str, int] = {}
    for name, _ in msg.headers:
        counts[name.lower()] = counts.get(name.lower(), 0) + 1
    if not msg.headers:
        return
    froms = counts.get("from", 0)
    if froms == 0:
        add(Finding("msg.missing-from", Status.FAIL, "no From header field",
                    reference="RFC 5322 3.6"))
    elif froms > 1:
        add(Finding("msg.multiple-from", Status.FAIL, f"{froms} From header fields",
                    detail="DMARC receivers reject or ignore such messages.",
                    reference="RFC 5322 3.6, RFC 7489 6.6.1"))
    elif msg.from_domain is None:
        add(Finding("msg.invalid-from", Status.FAIL,
                    "From does not hold exactly one address with a domain",
                    subject=(msg.get("from") or "")[:200], reference="RFC 7489 6.6.1"))
    for name in SINGLETONS:
        if name != "from" and counts.get(name, 0) > 1:
            add(Finding("msg.duplicate-header", Status.WARN,
                        f"{counts[name]} '{name}' header fields (at most one allowed)",
                        subject=name, reference="RFC 5322 3.6"))
    date = msg.get("date")
    if date is None:
        add(Finding("msg.missing-date", Status.WARN, "no Date header field",
                    reference="RFC 5322 3.6.1"))
    elif msg.date is None:
        add(Finding("msg.invalid-date", Status.WARN, "the Date header field does not parse",
                    subject=date[:200], reference="RFC 5322 3.3"))
    mid = msg.get("message-id")
    if mid is None:
        add(Finding("msg.missing-message-id", Status.WARN, "no Message-ID header field",
                    detail="Large mailbox providers expect one (bulk sender rules).",
                    reference="RFC 5322 3.6.4"))
    elif not _MSG_ID.match(mid):
        add(Finding("msg.invalid-message-id", Status.WARN, "Message-ID is not '<left@right>'",
                    subject=mid[:200], reference="RFC 5322 3.6.4"))


def _check_mime(msg: ParsedMessage) -> None:
    """Ask the stdlib parser for MIME defects (it never raises with compat32)."""
    import email
    import email.policy

    try:
        parsed = email.message_from_bytes(msg.raw, policy=email.policy.compat32)
        defects = [type(d).__name__ for part in parsed.walk() for d in part.defects]
    except Exception as exc:  # the stdlib parser should not raise; report it if it does
        defects = [f"{type(exc).__name__}: {exc}"]
    if defects:
        uniq = sorted(set(defects))
        msg.findings.append(Finding(
            "msg.mime-defects", Status.WARN, f"{len(defects)} MIME defect(s): {', '.join(uniq)}",
            data={"defects": uniq}, reference="RFC 2045, RFC 2046",
        ))
