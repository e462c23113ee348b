"""Short inline explanations of 4xx/5xx replies for the session (the ``explain`` data).

The explainer in ``smtpcli.codes`` is reached lazily through ``smtpcli.smtp.explain_hook``, only
when a reply needs explaining. When it has nothing to say, the registry tables shipped with it
(IANA basic and enhanced status codes) give a one-line meaning instead.
"""

from __future__ import annotations

import csv
import functools
import io
import re

from smtpcli.smtp.reply import Reply

_CODES = re.compile(r"\b([2-5]\d\d)\b(?:[ -]+([245]\.\d{1,3}\.\d{1,3}))?")


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, str], dict[str, str]]:
    from importlib import resources

    basic: dict[str, str] = {}
    enhanced: dict[str, str] = {}
    data = resources.files("smtpcli.codes") / "data"
    try:
        text = (data / "basic-reply-codes.csv").read_text(encoding="utf-8")
        for row in csv.DictReader(io.StringIO(text)):
            basic.setdefault(row["code"], row["meaning"])
        text = (data / "enhanced-status-codes.csv").read_text(encoding="utf-8")
        for row in csv.DictReader(io.StringIO(text)):
            enhanced.setdefault(row["code"], row["title"])
    except (OSError, KeyError, csv.Error):
        pass
    return basic, enhanced


def _from_library(text: str) -> str | None:
    """Ask the explain library (through the client core's hook) for a one-line summary."""
    from smtpcli.smtp.explain_hook import explain_reply as hook_reply
    from smtpcli.smtp.explain_hook import explain_summary

    match = re.match(r"\s*([2-5]\d\d)\b[ -]?(.*)$", text)
    if match is None:
        return None
    record = hook_reply(Reply(int(match.group(1)), (match.group(2),)))
    return explain_summary(record)


def explain_text(text: str) -> str | None:
    """One line about a reply text such as ``550 5.7.1 relaying denied`` or ``5.1.1``."""
    found = _from_library(text)
    if found:
        return found
    basic, enhanced = _tables()
    parts: list[str] = []
    match = _CODES.search(text)
    code = match.group(1) if match else None
    status = match.group(2) if match else None
    if status is None:
        m2 = re.search(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b", text)
        status = m2.group(0) if m2 else None
    if code and code in basic:
        parts.append(f"{code}: {basic[code]}")
    if status:
        generic = "X." + status.split(".", 1)[1]
        title = enhanced.get(status) or enhanced.get(generic)
        if title:
            parts.append(f"{status}: {title}")
    if code and code[0] == "4":
        parts.append("transient: retrying later may work")
    elif code and code[0] == "5":
        parts.append("permanent: retrying unchanged will fail")
    return "; ".join(parts) or None


def explain_reply(reply: Reply) -> str | None:
    """Inline explanation for a 4xx/5xx reply (None for anything else)."""
    if reply.code < 400:
        return None
    return explain_text(reply.one_line())
