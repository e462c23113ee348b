"""SPF record syntax per RFC 7208 section 12 (ABNF), term by term.

pyspf's own parser judges each term (``query.validate_mechanism`` for mechanisms, its
``expand_domain``/``expand`` for modifier values and macros): one grammar, kept by its
maintainers, and the same one the evaluation uses. What pyspf checks elsewhere or not at all is
added here: ASCII only, terms separated by spaces only (4.6.1), ``redirect``/``exp`` at most
once (6), the version term (4.5). No DNS: ``%{p}`` is pre-set, nothing is looked up.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: RFC 7208 4.6.1: terms are separated by SP only; other whitespace/controls are errors.
_BAD_SEPARATOR = re.compile(r"[\x00-\x1f\x7f]")
_REF = "RFC 7208 12"


@dataclass(frozen=True)
class SyntaxProblem:
    """One malformed term: what is wrong, the RFC section, and a corrected term if obvious
    (``""`` means "drop it")."""

    term: str
    problem: str
    reference: str = _REF
    fixed: str | None = None


#: pyspf's messages -> plain words and the section that decides (first match wins).
_PLAIN = (
    ("invalid-macro-char", "invalid macro: '%' must start %{...}, %%, %_ or %-", "RFC 7208 7.1"),
    ("unknown macro", "unknown macro letter (s l o d i p h c r t v only)", "RFC 7208 7.2"),
    ("c,r,t macros", "%{c}, %{r} and %{t} are allowed only in the exp= text", "RFC 7208 7.2"),
    ("use fqdn", "not a valid domain-spec: the last label must be a toplabel (letters, not "
                 "all digits, no leading or trailing '-'), and no ':' or port", "RFC 7208 7.1"),
    ("dual cidr not allowed", "ip4/ip6 take one CIDR length, not a dual one", "RFC 7208 5.6"),
    ("cidr not allowed", "this mechanism takes no CIDR length", "RFC 7208 5"),
    ("cidr length", "CIDR length out of range (ip4 0-32, ip6 0-128)", "RFC 7208 5.6"),
    ("invalid ip4 address", "not an IPv4 address with an optional /0-32 (no leading zeros)",
     "RFC 7208 5.6"),
    ("invalid ip6 address", "not an IPv6 address with an optional /0-128", "RFC 7208 5.6"),
    ("empty domain", "empty domain-spec after ':'", "RFC 7208 12"),
    ("implicit exists", "exists needs a domain-spec", "RFC 7208 5.7"),
    ("include mechanism missing", "include needs a domain-spec", "RFC 7208 5.2"),
    ("ip4 mechanism", "an IPv4 address after a: (use ip4:)", "RFC 7208 5.3"),
    ("unknown qualifier", "unknown qualifier: only + - ~ ? may precede a mechanism",
     "RFC 7208 4.6.2"),
    ("only qualifier allowed with all", "all takes no argument", "RFC 7208 5.1"),
    ("unknown mechanism", "unknown mechanism (a modifier is name=value, with '=')",
     "RFC 7208 5"),
    ("commas", "terms are separated by spaces, not commas", "RFC 7208 4.6.1"),
)


def _plain(exc: Exception) -> tuple[str, str]:
    msg = str(getattr(exc, "msg", exc)).strip().rstrip(":").strip() or "invalid"
    low = msg.lower()
    for key, text, ref in _PLAIN:
        if key in low:
            return text, ref
    return msg, _REF


def _non_ascii(term: str) -> SyntaxProblem | None:
    odd = sorted({f"U+{ord(c):04X}" for c in term if not c.isascii()})
    if not odd:
        return None
    stripped = "".join(c for c in term if c.isascii())
    return SyntaxProblem(term, "non-ASCII character(s) " + ", ".join(odd)
                         + " (the ABNF is ASCII only; often an invisible BOM or no-break space)",
                         "RFC 7208 12", stripped or "")


def _obvious_fix(term: str, name: str, message: str) -> str | None:
    """A corrected term when the intent is unambiguous."""
    qual = term[0] if term[:1] in "+-~?" else ""
    body = term[len(qual):]
    if name == "all":
        return qual + "all"  # -all:foo, -all/8, -all. -> -all
    if term.endswith(","):
        return term.rstrip(",")
    if "use ip4:" in message and ":" in body:  # a:192.0.2.1 -> ip4:192.0.2.1
        return qual + "ip4:" + body.split(":", 1)[1]
    if name == "ip4" and re.search(r"/0\d+$", body):  # ip4:1.2.3.4/032 -> /32
        return re.sub(r"/0+(\d)", r"/\1", term)
    if name in ("a", "mx") and body.lower() in ("a:", "mx:"):
        return qual + name  # an empty domain-spec: the current domain was meant
    return None


def _query(domain: str) -> Any:
    import spf

    q = spf.query(i="192.0.2.1", s=f"postmaster@{domain}", h=domain, strict=True)
    q.p = "unknown"  # %{p} would look up PTR records; syntax needs no DNS
    return q


@functools.lru_cache(maxsize=1024)
def check_terms(record: str, domain: str) -> tuple[SyntaxProblem, ...]:
    """Every syntax problem of ``record`` (as published at ``domain``); cached, as the walker,
    the term parser and the report all ask."""
    import spf

    problems: list[SyntaxProblem] = []
    version, _, rest = record.partition(" ")
    if version.lower() != "v=spf1":
        return (SyntaxProblem(version, "the record must start with v=spf1 and a space",
                              "RFC 7208 4.5"),)
    q = _query(domain if domain.isascii() else "record.invalid")
    seen: dict[str, int] = {}
    for raw in filter(None, rest.split(" ")):
        if _BAD_SEPARATOR.search(raw):
            shown = ", ".join(sorted({repr(c) for c in _BAD_SEPARATOR.findall(raw)}))
            problems.append(SyntaxProblem(
                raw, f"control character {shown} in the record: only spaces separate terms",
                "RFC 7208 4.6.1", _BAD_SEPARATOR.sub(" ", raw).strip()))
            continue
        odd = _non_ascii(raw)
        if odd is not None:
            problems.append(odd)
            continue
        problem = _check_term(q, spf, raw, seen)
        if problem is not None:
            problems.append(problem)
    return tuple(problems)


def _check_term(q: Any, spf: Any, term: str, seen: dict[str, int]) -> SyntaxProblem | None:
    """One term through pyspf's parser (check0's first pass, without the lookups)."""
    modifier = spf.RE_MODIFIER.split(term)[1:]
    try:
        if len(modifier) == 2:
            name, arg = modifier[0].lower(), modifier[1]
            seen[name] = seen.get(name, 0) + 1
            if name in ("redirect", "exp"):
                if seen[name] > 1:
                    return SyntaxProblem(term, f"{name}= may appear only once", "RFC 7208 6")
                if not arg:
                    return SyntaxProblem(term, f"{name}= needs a domain-spec", "RFC 7208 6")
                q.expand_domain(arg)
            else:
                q.expand(arg)  # RFC 7208 6: unknown modifiers are ignored, but must parse
            return None
        q.validate_mechanism(term)
        return None
    except spf.PermError as exc:
        if "trivial recursion" in str(exc):
            return None  # a loop, not syntax: the walker reports spf.loop (RFC 7208 4.6.4)
        message, ref = _plain(exc)
    except (ValueError, IndexError, KeyError) as exc:  # pyspf choking on the text itself
        message, ref = f"unparsable ({type(exc).__name__})", _REF
    name = re.sub(r"^[+\-~?]", "", term).split(":")[0].split("/")[0].rstrip(".").lower()
    return SyntaxProblem(term, message, ref, _obvious_fix(term, name, message))


def fixed_record(record: str, problems: Sequence[SyntaxProblem]) -> str | None:
    """The record with every problem's fix applied, if each has one and the result is clean."""
    if not problems or any(p.fixed is None for p in problems):
        return None
    fixes = {p.term: p.fixed for p in problems}
    version, _, rest = record.partition(" ")
    terms = [fixes.get(t, t) for t in rest.split(" ") if t]
    candidate = " ".join([version, *(t for t in terms if t)])
    return candidate if not check_terms(candidate, "record.invalid") else None
