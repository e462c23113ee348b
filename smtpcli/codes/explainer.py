"""Reply -> explanation record (the facts `smtpcli explain` prints).

Precedence: a provider rule (the reply's wording, or a provider code in no registry) wins over
the registry meaning of the enhanced code, which wins over the basic code's meaning. The class
comes from the basic code when there is one: it is what the sending MTA acts on (RFC 5321
section 4.2.1); otherwise from the enhanced code's class digit (RFC 3463 section 3.1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smtpcli.codes.find import find_replies
from smtpcli.codes.parse import Reply
from smtpcli.codes.registry import CLASS_NAMES, Registry, load_registry
from smtpcli.codes.rules import RuleSet, load_rules
from smtpcli.errors import UsageError

if TYPE_CHECKING:
    from email.message import Message

_NO_FIX = {
    "success": "Nothing to fix: the server accepted the command.",
    "intermediate": "Nothing to fix: the server is waiting for the next step of the command.",
}


def _dedupe(items: list[str]) -> list[str]:
    seen: set[str] = set()
    return [i for i in items if not (i in seen or seen.add(i))]  # type: ignore[func-returns-value]


def explain_reply(
    reply: Reply, registry: Registry | None = None, rules: RuleSet | None = None
) -> dict[str, Any]:
    """One explanation record with the documented keys (docs/explain.md)."""
    registry = registry or load_registry()
    rules = rules or load_rules()
    notes: list[str] = []
    code, enhanced = reply.code, reply.enhanced
    basic_entry = registry.basic.get(code) if code is not None else None
    enh_entry = registry.enhanced_entry(enhanced) if enhanced else None

    if code is not None:
        digit = code // 100
    elif enhanced:
        digit = int(enhanced[0])
    else:  # a bounce that states no code: the class comes from its action or wording
        digit = int(reply.fallback_class or "5")
        notes.append("The message states no SMTP reply code; the class comes from its "
                     "delivery status action or wording, the cause from its words.")
    klass = CLASS_NAMES[digit]
    if code is not None and enhanced and int(enhanced[0]) != digit:
        notes.append(
            f"The basic code {code} is {klass} but the enhanced code {enhanced} says "
            f"{CLASS_NAMES[int(enhanced[0])]}; the basic code decides what the sender does."
        )
    if code is not None and basic_entry is None:
        notes.append(f"{code} is not a reply code of RFC 5321/4954/3207/7504; only its class "
                     f"({klass}) is known from the first digit.")
    if enhanced and enh_entry is None:
        notes.append(f"{enhanced} is not in the IANA enhanced status code registry.")

    bare = reply.bare
    # A 2xx/3xx reply refuses nothing: wording rules (written for refusals) do not apply.
    refusal = klass not in ("success", "intermediate")
    # A reply is short; a whole pasted file is not: the rules read its first 8000 characters,
    # which keeps a huge input from costing seconds of pattern matching.
    words = reply.text[:8000]
    rule = rules.match(words, code, enhanced, bare=bare) if refusal else None
    registry_causes = [e.cause for e in (enh_entry, basic_entry)
                       if e is not None and e.cause and e.cause != "unknown"]
    if rule is not None and rule.weak and registry_causes:
        rule = None  # the words only name the SMTP stage; the code says more (RFC 3463)
    if bare and rule is None:
        notes.extend(rules.bare_notes(code, enhanced))

    # Cause: rule, then the enhanced code, then the basic code (RFC 3463 codes are finer).
    cause: str | None
    if klass in ("success", "intermediate"):
        cause = None
    elif rule is not None and rule.cause:
        cause = rule.cause
    else:
        cause = registry_causes[0] if registry_causes else "unknown"

    if klass != "transient":
        retry = False if rule is None or rule.retry_helps is None or klass != "permanent" \
            else bool(rule.retry_helps)
    elif rule is not None and rule.retry_helps is not None:
        retry = rule.retry_helps
    else:
        override = None
        if enh_entry is not None and enh_entry.cause == cause:
            override = enh_entry.retry_transient
        elif basic_entry is not None and basic_entry.cause == cause:
            override = basic_entry.retry_transient
        retry = override if override is not None else registry.cause_retry_transient.get(
            cause or "unknown", True)

    summary = rule.summary if rule is not None and rule.summary else None
    if summary is None:
        generic_enhanced = enh_entry is not None and enhanced is not None and \
            enhanced.endswith(".0")
        if enh_entry is not None and not (generic_enhanced and basic_entry is not None):
            summary = enh_entry.summary
        elif basic_entry is not None:
            summary = basic_entry.summary
        else:
            summary = f"Unknown code; its first digit says it is a {klass} reply."

    fix = rule.fix if rule is not None and rule.fix else None
    if fix is None:
        fix = _NO_FIX.get(klass) or registry.cause_fix.get(cause or "unknown", "")

    references = list(rule.references) if rule is not None else []
    if enh_entry is not None:
        references.extend(enh_entry.references)
    if basic_entry is not None:
        references.extend(basic_entry.references)
    if enhanced and enh_entry is None:
        references.append("RFC 3463")

    title = enh_entry.title if enh_entry is not None else (
        basic_entry.meaning if basic_entry is not None else None)
    provider = (rule.provider if rule is not None and rule.provider else None) or (
        None if bare else rules.provider_hint(words))
    return {
        "code": code,
        "class": klass,
        "enhanced": enhanced,
        "subject": registry.subject_name(enhanced) if enhanced else None,
        "provider": provider,
        "cause": cause,
        "retry_helps": retry,
        "summary": summary,
        "fix": fix,
        "references": _dedupe(references),
        "title": title,
        "rule": rule.id if rule is not None else None,
        "recipient": reply.recipient,
        "action": reply.action,
        "server": reply.server,
        "text": reply.text,
        "notes": notes,
    }


def explain_text(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Explain every reply in ``text``; returns (input kind, records).

    Raises UsageError when the text holds no SMTP code at all.
    """
    replies = find_replies(text)
    if not replies:
        shown = " ".join(text.split())[:60] or "(empty input)"
        raise UsageError(
            f"not an SMTP reply code, reply or bounce: {shown!r}",
            hint="try a code such as 550 or 5.7.26, a reply line, or a bounce file; "
                 "'smtpcli explain --list' lists the codes",
        )
    kinds = {r.source for r in replies}
    kind = "dsn" if "dsn" in kinds else ("bounce" if "bounce" in kinds else replies[0].source)
    return kind, [explain_reply(r) for r in replies]


def list_codes(klass: int | None = None, subject: int | None = None) -> list[dict[str, Any]]:
    """Every known code, for `explain --list`: basic codes, enhanced codes per class, and
    provider codes that are in no registry; filtered by class digit and subject digit."""
    registry = load_registry()
    out: list[dict[str, Any]] = []
    if subject is None:
        for code, entry in sorted(registry.basic.items()):
            if klass is None or code // 100 == klass:
                out.append({"code": str(code), "kind": "basic", "class": CLASS_NAMES[code // 100],
                            "title": entry.meaning, "cause": entry.cause})
    for digit in (2, 4, 5):
        if klass is not None and digit != klass:
            continue
        for key, enh in registry.enhanced.items():
            subj = int(key.split(".")[1])
            if subject is not None and subj != subject:
                continue
            out.append({"code": f"{digit}{key[1:]}", "kind": "enhanced",
                        "class": CLASS_NAMES[digit], "title": enh.title,
                        "cause": None if digit == 2 else enh.cause})
    for rule in load_rules().code_only_rules():
        fixed = rule.enhanced.replace("\\", "") if rule.enhanced else ""
        if not fixed[:1].isdigit() or not all(c.isdigit() or c == "." for c in fixed):
            continue  # a code range such as 5.7.606-649: listed in docs/explain.md, not here
        digit, subj = int(fixed[0]), int(fixed.split(".")[1])
        if (klass is None or digit == klass) and (subject is None or subj == subject):
            out.append({"code": fixed, "kind": "provider", "class": CLASS_NAMES[digit],
                        "title": rule.summary, "cause": rule.cause, "provider": rule.provider})
    return out


def completion_candidates(prefix: str) -> list[tuple[str, str]]:
    """(code, title) pairs starting with ``prefix``, for shell completion."""
    return [(c["code"], c["title"] or "") for c in list_codes() if c["code"].startswith(prefix)]


def explain_bytes(raw: bytes) -> tuple[str, list[dict[str, Any]]]:
    """Explain a file or message as read from disk (bytes, any charset): a bounce message is
    read part by part (codes.bounce); anything else, or a message that names no failed
    recipient, as text. Raises UsageError like explain_text."""
    text = raw.decode("utf-8", "replace")
    from smtpcli.codes.bounce_text import looks_like_message

    if looks_like_message(text):
        import email

        explained = explain_message(email.message_from_bytes(raw))
        if explained is not None:
            return explained
    return explain_text(text)


def explain_message(msg: Message,
                    raw_text: str | None = None) -> tuple[str, list[dict[str, Any]]] | None:
    """(input kind, records) of a parsed message, None when it names no failed recipient;
    with ``raw_text``, such a message is read once more as plain text (a bounce pasted
    without MIME structure)."""
    from smtpcli.codes.bounce import read_message

    replies = read_message(msg)
    if not replies and raw_text is not None:
        replies = [r for r in find_replies(raw_text) if r.code is not None or r.enhanced]
    if not replies:
        return None
    kind = "dsn" if any(r.source == "dsn" for r in replies) else "bounce"
    return kind, [explain_reply(r) for r in replies]
