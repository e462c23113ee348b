"""Mailpit's search filter language, the subset test suites use.

``to:bob@x from:alice subject:"Your code" is:unread has:attachment welcome -spam``: terms are
ANDed; a leading ``-`` or ``!`` negates one; quotes group words; bare words match the subject,
addresses, attachment names and body. Matching is case-insensitive substring matching, like
Mailpit's SQL ``LIKE``. A query that cannot be read (an unclosed quote, an unknown ``is:``
value, a key with no value) raises ``SearchError`` so the API can answer 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter

#: key -> which facts of a message it looks at (see ``Facts``).
FIELD_KEYS = {
    "to": "to", "from": "from_", "cc": "cc", "bcc": "bcc", "subject": "subject",
    "message-id": "message_id", "reply-to": "reply_to", "filename": "filenames",
    "addressed": "addressed",
}
FLAG_KEYS = {"is": ("read", "unread"), "has": ("attachment", "attachments", "inline")}


# A token: runs of non-space text and "quoted text" (a quote keeps its spaces).
_TOKEN = re.compile(r'(?:[^\s"]+|"[^"]*")+')


class SearchError(ValueError):
    """The query cannot be parsed."""


@dataclass(slots=True)
class Facts:
    """Lower-cased searchable facts of one message."""

    text: str
    to: str
    from_: str
    cc: str
    bcc: str
    subject: str
    message_id: str
    reply_to: str
    filenames: str
    read: bool
    attachments: int
    inline: int

    @property
    def addressed(self) -> str:
        return "\n".join((self.to, self.cc, self.bcc))


Predicate = Callable[[Facts], bool]


def _term(token: str) -> Predicate:
    key, sep, value = token.partition(":")
    key = key.lower()
    if sep and key in FIELD_KEYS:
        if not value:
            raise SearchError(f"{key}: needs a value")
        get, needle = attrgetter(FIELD_KEYS[key]), value.lower()
        return lambda f: needle in get(f)  # every poll scans every message: keep this lean
    if sep and key in FLAG_KEYS:
        flag = value.lower()
        if flag not in FLAG_KEYS[key]:
            raise SearchError(f"{key}:{value} is not known (try {', '.join(FLAG_KEYS[key])})")
        if key == "is":
            want_read = flag == "read"
            return lambda f: f.read is want_read
        if flag == "inline":
            return lambda f: f.inline > 0
        return lambda f: f.attachments > 0
    needle = token.lower()
    return lambda f: needle in f.text


def compile_query(query: str) -> Predicate:
    """The query as one predicate over ``Facts`` (an empty query matches everything)."""
    if query.count('"') % 2:
        raise SearchError("cannot read the query: a quote is not closed")
    tokens = [t.replace('"', "") for t in _TOKEN.findall(query)]
    preds: list[tuple[bool, Predicate]] = []
    for raw in tokens:
        negate = raw[:1] in ("-", "!") and len(raw) > 1
        token = raw[1:] if negate else raw
        if token:
            preds.append((negate, _term(token)))
    if not preds:
        return lambda f: True
    if len(preds) == 1 and not preds[0][0]:
        return preds[0][1]  # the common case, without a loop around it
    return lambda f: all(p(f) is not neg for neg, p in preds)
