"""Short inline explanations of 4xx/5xx replies for the session, from the explain library.

The library (``smtpcli.codes``) is imported only when something needs explaining.
"""

from __future__ import annotations

from smtpcli.errors import UsageError
from smtpcli.smtp.explain_hook import explain_summary
from smtpcli.smtp.reply import Reply


def explain_text(text: str) -> str | None:
    """One line about ``550 5.7.1 relaying denied``, ``5.1.1`` or ``421`` (None: not a code)."""
    from smtpcli.codes.explainer import explain_text as explain

    try:
        _, records = explain(text)
    except UsageError:
        return None
    if not records:
        return None
    record = records[0]
    label = " ".join(str(record[k]) for k in ("code", "enhanced") if record.get(k))
    summary = explain_summary(record)
    return f"{label}: {summary}" if label and summary else summary


def explain_reply(reply: Reply) -> str | None:
    """Inline explanation for a 4xx/5xx reply (None for anything else)."""
    if reply.code < 400:
        return None
    return explain_text(reply.one_line())
