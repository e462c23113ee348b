"""Search facts of a simple message without the ``email`` package's full parse.

Most messages a test server receives are one text part in 7bit/8bit: their headers are a few
``Name: value`` lines and their body is the text. For those, splitting the bytes is about ten
times cheaper than ``email.message_from_bytes`` plus address parsing, and a busy server that
someone is searching parses every message. Anything else (multipart, base64 or
quoted-printable, encoded words, a non-text body) returns None and takes the full path.
"""

from __future__ import annotations

import re

from smtpcli.server.message_view import html_to_text
from smtpcli.server.search import Facts
from smtpcli.server.storage import StoredMessage

_FOLD = re.compile(r"\r?\n[ \t]+")
_PLAIN_CTE = ("", "7bit", "8bit", "binary")


def quick_facts(msg: StoredMessage, read: bool) -> Facts | None:
    head_bytes, sep, body_bytes = msg.content.partition(b"\r\n\r\n")
    if not sep:
        return None
    head = head_bytes.decode("utf-8", "replace")
    if "=?" in head:
        return None  # RFC 2047 words need decoding to be searched
    fields: dict[str, list[str]] = {}
    for line in _FOLD.sub(" ", head).split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            fields.setdefault(name.strip().lower(), []).append(" ".join(value.split()))
    ctype = (fields.get("content-type") or ["text/plain"])[0].lower()
    cte = (fields.get("content-transfer-encoding") or [""])[0].lower().strip()
    if not ctype.startswith(("text/plain", "text/html")) or cte not in _PLAIN_CTE:
        return None
    if any(ord(c) > 127 for c in head) and "charset" not in ctype:
        return None  # leave odd 8-bit headers to the full parser

    def get(name: str) -> str:
        return "\n".join(fields.get(name, [])).lower()

    body = body_bytes.decode("utf-8", "replace")
    if ctype.startswith("text/html"):
        body = html_to_text(body)
    to, cc, bcc = get("to"), get("cc"), get("bcc")
    # As in the full view: envelope recipients named in no header count as Bcc.
    hidden = [r.lower() for r in msg.rcpt_tos if r.lower() not in f"{to}\n{cc}\n{bcc}"]
    bcc = "\n".join(x for x in (bcc, *hidden) if x)
    from_ = get("from") or msg.mail_from.lower()
    subject = get("subject")
    text = "\n".join((subject, from_, to, cc, get("reply-to"), msg.mail_from.lower(),
                      *(r.lower() for r in msg.rcpt_tos), body.lower()))
    return Facts(
        text=text, to=to, from_=from_, cc=cc, bcc=bcc, subject=subject,
        message_id=get("message-id").strip("<>"), reply_to=get("reply-to"), filenames="",
        read=read, attachments=0, inline=0,
    )
