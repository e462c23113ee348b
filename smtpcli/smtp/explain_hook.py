"""Integration point with the explain library (``smtpcli.codes``), built separately.

``explain_reply`` returns the explain record for a 4xx/5xx reply as JSON-safe data, or None when
the explain library is not installed yet or has nothing to say. It imports lazily so sending mail
never pays for the explain data unless a rejection needs explaining.

Expected interface (any of these, first found wins):
``smtpcli.codes.explainer.explain_text(text) -> object with to_dict() | dict | None``.
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
    if record is None:
        return None
    data = jsonable(record)
    return data if isinstance(data, dict) else {"text": str(data)}


def explain_summary(record: dict[str, Any] | None) -> str | None:
    """One human line from an explain record (its summary/meaning field)."""
    if not record:
        return None
    for key in ("summary", "meaning", "explanation", "text", "title"):
        value = record.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
