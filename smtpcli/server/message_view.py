"""A stored message seen the way Mailpit's API v1 shows it: summary, full message, parts.

Field names follow Mailpit's published models (``MessageSummary``, ``Message``, ``Attachment``
in its swagger description) so clients written for Mailpit read them unchanged. Parsing uses
the standard library's ``email`` package with the ``default`` policy; a message whose MIME is
broken still gets a view (the raw body as text), because a test server must show what arrived,
not only what parses.
"""

from __future__ import annotations

import email
import email.header
import email.message
import email.policy
import email.utils
import hashlib
import re
import time
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from smtpcli.server.quick_parse import quick_parse
from smtpcli.server.storage import StoredMessage

SNIPPET_CHARS = 250  # Mailpit: "Message snippet includes up to 250 characters"
_TAGS = re.compile(r"<[^>]*>")
_STYLE = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def iso_time(ts: float) -> str:
    """RFC 3339 UTC with milliseconds, as Mailpit's ``Created`` (``...T12:00:00.123Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


# One plain address, "Name <addr>" or "addr": most headers a test server sees. Anything else
# (quotes, comments, groups, several addresses) goes to the standard library's full parser,
# which is exact but costs most of the time a message's summary takes.
_ATOM = r'[^<>\s,;:()"\\@\[\]]+'
_SIMPLE_ADDR = re.compile(rf'^\s*(?:([^"<>,;:()\\@\[\]]*?)\s*<({_ATOM}@{_ATOM})>|({_ATOM}@{_ATOM}))\s*$')


def decode_words(value: str) -> str:
    """RFC 2047 encoded words (``=?utf-8?q?Caf=C3=A9?=``) as text; undecodable ones as sent."""
    if "=?" not in value:
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (LookupError, ValueError, UnicodeError):
        return value


def _addresses(values: list[str]) -> list[dict[str, str]]:
    if not values:
        return []
    if len(values) == 1:
        m = _SIMPLE_ADDR.match(values[0])
        if m:
            return [{"Name": decode_words((m.group(1) or "").strip()),
                     "Address": m.group(2) or m.group(3)}]
    return [{"Name": decode_words(name), "Address": addr}
            for name, addr in email.utils.getaddresses(values) if addr or name]


@dataclass
class Part:
    """One attachment or inline part (Mailpit's ``Attachment`` model)."""

    part_id: str
    filename: str
    content_type: str
    content_id: str
    payload: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "PartID": self.part_id, "FileName": self.filename, "ContentType": self.content_type,
            "ContentID": self.content_id, "Size": len(self.payload),
            "Checksums": {
                "MD5": hashlib.md5(self.payload, usedforsecurity=False).hexdigest(),
                "SHA1": hashlib.sha1(self.payload, usedforsecurity=False).hexdigest(),
                "SHA256": hashlib.sha256(self.payload).hexdigest(),
            },
        }


@dataclass
class ParsedMessage:
    """What the API needs from one message, computed once and cached by the mailbox."""

    headers: list[tuple[str, str]]
    text: str = ""
    html: str = ""
    attachments: list[Part] = field(default_factory=list)
    inline: list[Part] = field(default_factory=list)
    mime_error: str | None = None
    _by_name: dict[str, list[str]] | None = field(default=None, repr=False)

    def header(self, name: str) -> str:
        values = self.by_name.get(name.lower())
        return values[0] if values else ""

    def header_all(self, name: str) -> list[str]:
        return self.by_name.get(name.lower(), [])

    @property
    def by_name(self) -> dict[str, list[str]]:
        """Lower-cased name -> values, built on first use."""
        if self._by_name is None:
            self._by_name = {}
            for key, value in self.headers:
                self._by_name.setdefault(key.lower(), []).append(value)
        return self._by_name

    def part(self, part_id: str) -> Part | None:
        for p in (*self.attachments, *self.inline):
            if p.part_id == part_id:
                return p
        return None


def _text_of(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:  # an unknown charset name in the header
        return payload.decode("utf-8", "replace")


def _walk(part: email.message.Message, part_id: str, out: ParsedMessage) -> None:
    """Number parts the way MIME trees are usually addressed (1, 2, 2.1, ...) and sort them."""
    if part.is_multipart():
        children = part.get_payload()
        if isinstance(children, list):
            for n, child in enumerate(children, 1):
                _walk(child, f"{part_id}.{n}" if part_id else str(n), out)
        return
    ctype = part.get_content_type()
    disposition = (part.get_content_disposition() or "").lower()
    filename = part.get_filename() or ""
    cid = (part.get("Content-ID") or "").strip().strip("<>")
    is_body = disposition != "attachment" and not filename and ctype in ("text/plain", "text/html")
    if is_body:
        if ctype == "text/plain" and not out.text:
            out.text = _text_of(part)
            return
        if ctype == "text/html" and not out.html:
            out.html = _text_of(part)
            return
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    item = Part(part_id or "1", filename, ctype, cid, data)
    if disposition == "inline" and cid or (cid and disposition != "attachment" and not filename):
        out.inline.append(item)
    else:
        out.attachments.append(item)


def parse(content: bytes) -> ParsedMessage:
    """Headers, text, HTML and parts of ``content``; never raises on bad MIME."""
    quick = quick_parse(content)
    if quick is not None:
        headers, text, html = quick
        return ParsedMessage(headers, text=text, html=html)
    return parse_full(content)


def parse_full(content: bytes) -> ParsedMessage:
    """``parse`` with the standard library's parser, for any message."""
    try:
        msg = email.message_from_bytes(content, policy=email.policy.compat32)
        headers = [(k, " ".join(str(v).split())) for k, v in msg.items()]
    except Exception as exc:  # the parser is lenient; this is for the truly unexpected
        body = content.split(b"\r\n\r\n", 1)[-1]
        return ParsedMessage([], text=body.decode("utf-8", "replace"),
                             mime_error=f"{type(exc).__name__}: {exc}")
    out = ParsedMessage(headers)
    try:
        _walk(msg, "", out)
    except Exception as exc:  # undecodable part: keep what we have, show the body raw
        out.mime_error = f"{type(exc).__name__}: {exc}"
        if not out.text and not out.html:
            out.text = content.split(b"\r\n\r\n", 1)[-1].decode("utf-8", "replace")
    if msg.defects and out.mime_error is None:
        out.mime_error = "; ".join(type(d).__name__ for d in msg.defects)
    return out


def html_to_text(html: str) -> str:
    return " ".join(_TAGS.sub(" ", _STYLE.sub(" ", html)).split())


def snippet(parsed: ParsedMessage) -> str:
    # Only the start is needed: a 30 MB body is not split into words for 250 characters.
    head = SNIPPET_CHARS * 4
    text = " ".join(parsed.text[:head].split()) if parsed.text else html_to_text(parsed.html[:head * 4])
    return text[:SNIPPET_CHARS]


def _date(parsed: ParsedMessage, fallback: float) -> str:
    raw = parsed.header("Date")
    if raw:
        try:
            dt = email.utils.parsedate_to_datetime(raw)
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        except (TypeError, ValueError, IndexError):
            pass
    return iso_time(fallback)


def _address_fields(msg: StoredMessage, parsed: ParsedMessage) -> dict[str, Any]:
    from_list = _addresses(parsed.header_all("From"))
    to = _addresses(parsed.header_all("To"))
    cc = _addresses(parsed.header_all("Cc"))
    bcc = _addresses(parsed.header_all("Bcc"))
    # As Mailpit does: envelope recipients named in no header were Bcc'd.
    named = {a["Address"].lower() for a in (*to, *cc, *bcc)}
    bcc += [{"Name": "", "Address": r} for r in msg.rcpt_tos if r.lower() not in named]
    return {
        "From": from_list[0] if from_list else {"Name": "", "Address": msg.mail_from},
        "To": to, "Cc": cc, "Bcc": bcc, "ReplyTo": _addresses(parsed.header_all("Reply-To")),
    }


def _message_id(parsed: ParsedMessage) -> str:
    return parsed.header("Message-ID").strip().strip("<>")


def summary(msg: StoredMessage, parsed: ParsedMessage, read: bool) -> dict[str, Any]:
    """One entry of ``GET /api/v1/messages`` (Mailpit's ``MessageSummary``)."""
    return {
        "ID": msg.id, "MessageID": _message_id(parsed), "Read": read,
        **_address_fields(msg, parsed),
        "Subject": decode_words(parsed.header("Subject")), "Created": iso_time(msg.received_at),
        "Username": (msg.auth or {}).get("user") or "", "Tags": [],
        "Size": len(msg.stored), "Attachments": len(parsed.attachments),
        "Snippet": snippet(parsed),
    }


def message(msg: StoredMessage, parsed: ParsedMessage) -> dict[str, Any]:
    """``GET /api/v1/message/{ID}`` (Mailpit's ``Message``)."""
    unsub = parsed.header("List-Unsubscribe")
    return {
        "ID": msg.id, "MessageID": _message_id(parsed),
        **_address_fields(msg, parsed),
        "ReturnPath": msg.mail_from, "Subject": decode_words(parsed.header("Subject")),
        "ListUnsubscribe": {
            "Header": unsub, "Links": re.findall(r"<([^>]+)>", unsub), "Errors": "",
            "HeaderPost": parsed.header("List-Unsubscribe-Post"),
        },
        "Date": _date(parsed, msg.received_at), "Tags": [],
        "Username": (msg.auth or {}).get("user") or "",
        "Text": parsed.text, "HTML": parsed.html, "Size": len(msg.stored),
        "Inline": [p.to_dict() for p in parsed.inline],
        "Attachments": [p.to_dict() for p in parsed.attachments],
    }


def headers_map(parsed: ParsedMessage) -> dict[str, list[str]]:
    """``GET /api/v1/message/{ID}/headers``: name -> values, names sorted (as Mailpit)."""
    out: dict[str, list[str]] = {}
    for key, value in parsed.headers:
        out.setdefault(key, []).append(value)
    return dict(sorted(out.items()))


def search_text(msg: StoredMessage, parsed: ParsedMessage) -> str:
    """Lower-cased text bare search words are looked for in: subject, addresses, body."""
    parts = [decode_words(parsed.header(h)) for h in ("Subject", "From", "To", "Cc", "Reply-To")]
    parts += [msg.mail_from, *msg.rcpt_tos, parsed.text, html_to_text(parsed.html)]
    parts += [p.filename for p in parsed.attachments]
    return "\n".join(parts).lower()
