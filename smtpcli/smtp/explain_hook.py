"""Integration point with the explain library (``smtpcli.codes``), built separately.

``explain_reply`` returns the explain record for a 4xx/5xx reply as JSON-safe data, or None when
the explain library is not installed yet or has nothing to say. It imports lazily so sending mail
never pays for the explain data unless a rejection needs explaining.

Interface used: ``smtpcli.codes.explainer.explain_text(text) -> (kind, [record, ...])`` where a
record is a dict (code, class, enhanced, cause, retry_helps, summary, fix, references...); a
bare record or None are accepted too. The first record is the one for our reply.
"""

from __future__ import annotations

import importlib
from typing import Any

from smtpcli.results import jsonable
from smtpcli.smtp.reply import Reply

_CANDIDATES = (("smtpcli.codes.explainer", "explain_text"), ("smtpcli.codes", "explain_text"))


def _explainer() -> Any:
    for module_name, attr in _CANDIDATES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        func = getattr(module, attr, None)
        if callable(func):
            return func
    return None


def explain_reply(reply: Reply) -> dict[str, Any] | None:
    """The explain record for a rejection (``None`` for 2xx/3xx or without the library)."""
    if reply.code < 400:
        return None
    func = _explainer()
    if func is None:
        return None
    try:
        record = func(reply.one_line())
    except Exception:  # explaining is a bonus: a bug there must not fail the send
        return None
    if isinstance(record, tuple) and len(record) == 2 and isinstance(record[1], list):
        record = record[1][0] if record[1] else None
    if record is None:
        return None
    data = jsonable(record)
    return data if isinstance(data, dict) else {"text": str(data)}


def explain_summary(record: dict[str, Any] | None) -> str | None:
    """One human line from an explain record (its summary/meaning field)."""
    if not record:
        return None
    parts = [record.get(k) for k in ("summary", "fix")]
    text = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    return text or None
