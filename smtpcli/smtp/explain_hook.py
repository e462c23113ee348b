"""The explain record of a rejection, for send, probe and session (``smtpcli.codes``).

Imported lazily: sending mail never pays for the explain data unless a reply needs explaining.
"""

from __future__ import annotations

from typing import Any

from smtpcli.errors import UsageError
from smtpcli.smtp.reply import Reply


def explain_reply(reply: Reply) -> dict[str, Any] | None:
    """The explain record for a 4xx/5xx reply (``None`` for 2xx/3xx)."""
    if reply.code < 400:
        return None
    from smtpcli.codes.explainer import explain_text

    try:
        _, records = explain_text(reply.one_line())
    except UsageError:  # only for text without any code, which a parsed reply cannot be
        return None
    return records[0] if records else None


def explain_summary(record: dict[str, Any] | None) -> str | None:
    """One human line from an explain record: its summary, then what to do."""
    if not record:
        return None
    parts = [record.get(k) for k in ("summary", "fix")]
    text = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    return text or None
