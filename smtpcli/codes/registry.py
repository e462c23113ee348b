"""The code tables: basic reply codes (RFC 5321 4.2.3, RFC 4954, RFC 3207, RFC 7504), the IANA
enhanced status code registry (RFC 3463, RFC 5248) and smtpcli's advice per cause.

Loaded once, lazily: `smtpcli explain` must start fast. The CSVs are verbatim copies of the
reference export (see data/README.md for its quirks); they and the JSON files are read from
``tables.py``, their generated copy as Python literals (scripts/gen_code_tables.py), which
loads from bytecode without the csv and json modules.
"""

from __future__ import annotations

import os
import re
from functools import cache
from typing import Any

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

CLASS_NAMES = {2: "success", 3: "intermediate", 4: "transient", 5: "permanent"}
CAUSES = (
    "sender-authentication", "ip-reputation", "reverse-dns", "content-filter",
    "recipient-unknown", "mailbox-full", "mailbox-disabled", "rate-limit", "greylisting",
    "message-too-large", "tls-required", "relay-denied", "auth-failed", "protocol-error",
    "server-unavailable", "sender-domain-invalid", "sender-blocked", "helo-rejected",
    "policy-denied", "routing", "receiver-misconfiguration", "unknown",
)


class _Record:
    """Plain attribute holder: dataclass creation costs milliseconds at import, and this module
    is on the `smtpcli explain` start-up path."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, **kwargs: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, kwargs[name])

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({inner})"


class EnhancedEntry(_Record):
    """One registry row, keyed ``X.Y.Z`` (the class digit is not part of the registry key)."""

    __slots__ = ("key", "title", "basic_codes", "references", "description", "cause",
                 "retry_transient")
    key: str
    title: str
    basic_codes: str
    references: tuple[str, ...]
    description: str
    cause: str | None
    retry_transient: bool | None

    @property
    def summary(self) -> str:
        return _plain(first_sentence(self.description)) or self.title + "."


class BasicEntry(_Record):
    """One basic reply code (RFC 5321 section 4.2.3 and the AUTH/STARTTLS/RFC 7504 additions)."""

    __slots__ = ("code", "meaning", "references", "suggested_enhanced", "notes", "cause",
                 "retry_transient")
    code: int
    meaning: str
    references: tuple[str, ...]
    suggested_enhanced: str | None
    notes: str
    cause: str | None
    retry_transient: bool | None

    @property
    def summary(self) -> str:
        return self.meaning.rstrip(".") + "."


class Registry(_Record):
    """All tables, read once by load_registry()."""

    __slots__ = ("basic", "enhanced", "classes", "subjects", "cause_fix",
                 "cause_retry_transient")
    basic: dict[int, BasicEntry]
    enhanced: dict[str, EnhancedEntry]
    classes: dict[int, tuple[str, str]]
    subjects: dict[int, tuple[str, str]]
    cause_fix: dict[str, str]
    cause_retry_transient: dict[str, bool]

    def enhanced_entry(self, code: str) -> EnhancedEntry | None:
        """The registry row for a concrete code such as ``5.7.26`` (``X.7.26``)."""
        _, _, rest = code.partition(".")
        return self.enhanced.get("X." + rest)

    def subject_name(self, code: str) -> str | None:
        parts = code.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        entry = self.subjects.get(int(parts[1]))
        return entry[0] if entry else None


def first_sentence(text: str) -> str:
    """The first sentence of a registry description (they are long paragraphs)."""
    text = " ".join(text.split())
    for stop in (". ", ".\n"):
        head, sep, _ = text.partition(stop)
        if sep and len(head) > 20:
            return head + "."
    return text if not text or text.endswith(".") else text + "."


_LEADS = re.compile(
    r"^This (status code (is|may be) returned when|response to the AUTH command indicates that|"
    r"indicates that|indicates the) "
)


def _plain(sentence: str) -> str:
    """Drop the registry's boilerplate lead ("This status code is returned when ...")."""
    rest = _LEADS.sub("", sentence)
    if rest is sentence or not rest:
        return sentence
    if rest.startswith("reception"):  # X.6.7 reads badly without its lead
        return sentence
    return rest[0].upper() + rest[1:]


def format_reference(ref: str) -> str:
    """``RFC3463`` -> ``RFC 3463``; ``RFC5321 section 4.2.3`` -> ``RFC 5321 section 4.2.3``."""
    ref = ref.strip()
    if ref.startswith("RFC") and len(ref) > 3 and ref[3].isdigit():
        return "RFC " + ref[3:]
    return ref


def _split_refs(cell: str) -> tuple[str, ...]:
    # Registry cells list several references separated by ';' (or ',' in one quirky row).
    parts = [p for chunk in cell.split(";") for p in chunk.split(", RFC")]
    out = []
    for part in parts:
        part = part.strip()
        if part and not part.startswith("RFC") and part[0].isdigit():
            part = "RFC" + part
        if part:
            out.append(format_reference(part))
    return tuple(out)


def _rows(name: str) -> tuple[dict[str, str], ...]:
    from smtpcli.codes.tables import CSV_ROWS

    return CSV_ROWS[name]


def _class_digit(cell: str) -> int:
    return int(cell.strip()[0])


@cache
def load_advice() -> dict[str, Any]:
    from smtpcli.codes.tables import ADVICE

    return ADVICE


@cache
def load_registry() -> Registry:
    """Read the tables once per process."""
    advice = load_advice()
    enhanced: dict[str, EnhancedEntry] = {}
    for row in _rows("enhanced-status-codes.csv"):
        key = row["code"].strip()
        extra = advice["enhanced"].get(key, {})
        title = row["title"].strip()
        description = row["description"].strip()
        if not title:
            # Registry quirk: X.6.10 has no title; its description says it duplicates X.6.8.
            title = first_sentence(description).rstrip(".")
        basic_codes = row["associated_basic_codes"].strip()
        if basic_codes == ".":  # Registry quirk: X.7.28's basic-code cell is a literal '.'.
            basic_codes = ""
        enhanced[key] = EnhancedEntry(
            key=key, title=title, basic_codes=basic_codes,
            references=_split_refs(row["reference"]), description=description,
            cause=extra.get("cause", "unknown"), retry_transient=extra.get("retry_transient"),
        )
    basic: dict[int, BasicEntry] = {}
    for row in _rows("basic-reply-codes.csv"):
        code = int(row["code"])
        extra = advice["basic"].get(str(code), {})
        basic[code] = BasicEntry(
            code=code, meaning=row["meaning"].strip(), references=_split_refs(row["reference"]),
            suggested_enhanced=row["suggested_enhanced_code"].strip() or None,
            notes=row["notes"].strip(), cause=extra.get("cause", "unknown"),
            retry_transient=extra.get("retry_transient"),
        )
    classes: dict[int, tuple[str, str]] = {}
    subjects: dict[int, tuple[str, str]] = {}
    for row in _rows("enhanced-status-classes-subjects.csv"):
        cell = row["code"].strip()
        value = (row["title"].strip(), row["description"].strip())
        if cell.startswith("X."):
            subjects[int(cell.split(".")[1])] = value
        else:
            classes[_class_digit(cell)] = value
    causes = advice["causes"]
    return Registry(
        basic=basic, enhanced=enhanced, classes=classes, subjects=subjects,
        cause_fix={k: v["fix"] for k, v in causes.items()},
        cause_retry_transient={k: bool(v["retry_transient"]) for k, v in causes.items()},
    )
