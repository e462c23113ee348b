"""DMARC record syntax per RFC 7489 section 6.4 (ABNF) and 6.3 (tag semantics).

A record is ``v=DMARC1`` (the value case-sensitive), then ``p``, then the other tags in any
order, separated by ``;`` with optional whitespace. Fail-level problems make a receiver ignore
the tag or the whole record; unknown tags are warnings (6.3: "MUST be ignored"). ``repair``
builds a record that is valid by this same lint, or gives none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

POLICIES = ("none", "quarantine", "reject")
#: RFC 7489 6.3, plus np (RFC 9091, PSD DMARC) and t/psd (RFC 9989), which receivers read.
KNOWN_TAGS = ("v", "p", "sp", "rua", "ruf", "adkim", "aspf", "ri", "fo", "rf", "pct", "np",
              "t", "psd")
#: RFC 7489 6.3 rf: the IANA "Reporting Formats" registry holds only "afrf".
REPORT_FORMATS = ("afrf",)
_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_WSP = " \t"
_SIZE = re.compile(r"^[0-9]+[kmgt]?$", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
#: RFC 3986 characters of a URI (reserved, unreserved and '%'); '!' and ',' excluded, as
#: RFC 7489 6.2 requires them %-encoded inside a DMARC URI.
_URI_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@$&'()*+;=%]+$")
_ADDR_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+"
                          r"[A-Za-z](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?$")
_KEYWORD = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?$")  # RFC 5321 Keyword
MAX_RI = 2**32 - 1  # RFC 7489 6.3: ri is a 32-bit unsigned integer
#: A DMARC record's start (RFC 7489 6.4: WSP may surround '='); case-insensitive here so the
#: lint can explain a lower-case "dmarc1" instead of ignoring the record.
_START = re.compile(r"^[ \t]*v[ \t]*=[ \t]*dmarc1[ \t]*(;|$)", re.IGNORECASE)


def is_dmarc_record(text: str) -> bool:
    return bool(_START.match(text))


@dataclass(frozen=True)
class DmarcProblem:
    """One problem: the tag it concerns ('' for the record), ``fail`` or ``warn``."""

    tag: str
    problem: str
    level: str = "fail"
    reference: str = "RFC 7489 6.4"


@dataclass
class DmarcLint:
    tags: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    problems: list[DmarcProblem] = field(default_factory=list)
    bad_tags: set[str] = field(default_factory=set)

    @property
    def valid(self) -> bool:
        return not any(p.level == "fail" for p in self.problems)

    def add(self, tag: str, problem: str, level: str = "fail",
            reference: str = "RFC 7489 6.4") -> None:
        self.problems.append(DmarcProblem(tag, problem, level, reference))
        if level == "fail" and tag:
            self.bad_tags.add(tag)


@dataclass(frozen=True)
class ReportUri:
    uri: str
    scheme: str
    address: str  # the mailbox for mailto:, else the whole URI
    size: str | None


def parse_uri(text: str) -> tuple[ReportUri | None, str | None]:
    """One dmarc-uri (RFC 7489 6.4: URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]): the URI
    or the problem."""
    uri, bang, size = text.partition("!")
    if bang and not _SIZE.match(size):
        return None, f"{text!r}: the size limit after '!' must be digits and k, m, g or t"
    if not _SCHEME.match(uri):
        return None, f"{text!r} is not a URI (it needs a scheme such as mailto:)"
    if not _URI_CHARS.match(uri):
        return None, f"{text!r} has characters a URI may not hold unencoded (RFC 3986)"
    scheme, _, rest = uri.partition(":")
    if scheme.lower() != "mailto":
        return ReportUri(uri, scheme.lower(), uri, size or None), None
    address = rest.split("?", 1)[0]
    local, at, host = address.rpartition("@")
    if not at or not local or not _ADDR_DOMAIN.match(host.rstrip(".")):
        return None, f"{text!r}: mailto: needs an address local@domain (RFC 6068)"
    return ReportUri(uri, "mailto", address, size or None), None


def _split(text: str) -> list[str]:
    return [part.strip(_WSP) for part in text.strip(_WSP).split(";")]


def lint_dmarc(text: str) -> DmarcLint:
    """Every problem of a DMARC policy record (RFC 7489 6.3, 6.4)."""
    lint = DmarcLint()
    parts = _split(text)
    if parts and parts[-1] == "":
        parts.pop()  # one trailing ';' is allowed ([dmarc-sep])
    for index, part in enumerate(parts):
        if not part:
            # RFC 7489 6.4: dmarc-sep is one ';' between components, so ';;' does not parse
            lint.add("", "an empty tag between two ';'")
            continue
        tag, eq, value = part.partition("=")
        tag, value = tag.strip(_WSP), value.strip(_WSP)
        if not eq or not _TAG.match(tag):
            lint.add("", f"{part!r} is not tag=value")
            continue
        low = tag.lower()
        if index == 0 and (low != "v" or value != "DMARC1"):
            lint.add("v", "the record must start with v=DMARC1 (case-sensitive value)",
                     reference="RFC 7489 6.4")
        elif index > 0 and low == "v":
            lint.add("v", "v= may only be the first tag", reference="RFC 7489 6.3")
            continue
        if low in lint.tags:
            lint.add(low, f"{low}= appears more than once", reference="RFC 7489 6.3")
            continue
        lint.tags[low] = value
        lint.order.append(low)
        if low not in KNOWN_TAGS:
            lint.add(low, f"unknown tag {tag}= (receivers ignore it)", "warn", "RFC 7489 6.3")
            continue
        _check_value(lint, low, value)
    if not lint.order or lint.order[0] != "v":
        if not any(p.tag == "v" for p in lint.problems):
            lint.add("v", "the record must start with v=DMARC1")
    if "p" not in lint.tags:
        lint.add("p", "p= is required in a policy record", reference="RFC 7489 6.3")
    elif lint.order[0] == "v" and lint.order.index("p") != 1:
        lint.add("p", "p= should follow v=DMARC1 directly (the RFC 7489 ABNF order; some "
                      "receivers insist)", "warn", "RFC 7489 6.4")
    return lint


def _check_value(lint: DmarcLint, tag: str, value: str) -> None:
    low = value.lower()
    if tag in ("p", "sp", "np") and low not in POLICIES:
        lint.add(tag, f"{tag}={value} is not none, quarantine or reject", reference="RFC 7489 6.3")
    elif tag in ("adkim", "aspf") and low not in ("r", "s"):
        lint.add(tag, f"{tag}={value} is not r or s", reference="RFC 7489 6.3")
    elif tag == "pct" and not (value.isascii() and value.isdigit() and len(value) <= 3
                               and int(value) <= 100):
        lint.add(tag, f"pct={value} is not a whole number 0-100", reference="RFC 7489 6.3")
    elif tag == "ri" and not (value.isascii() and value.isdigit() and int(value) <= MAX_RI):
        lint.add(tag, f"ri={value} is not a number of seconds (32-bit)", reference="RFC 7489 6.3")
    elif tag == "fo" and any(v.strip(_WSP) not in ("0", "1", "d", "s")
                             for v in value.split(":")):
        lint.add(tag, f"fo={value} is not a ':'-list of 0, 1, d, s", reference="RFC 7489 6.3")
    elif tag == "rf":
        formats = [v.strip(_WSP) for v in value.split(":")]
        if not all(_KEYWORD.match(f) for f in formats):
            lint.add(tag, f"rf={value} is not a ':'-list of format keywords",
                     reference="RFC 7489 6.4")
        elif any(f.lower() not in REPORT_FORMATS for f in formats):
            lint.add(tag, f"rf={value}: afrf is the only registered report format",
                     "warn", "RFC 7489 6.3")
    elif tag in ("t", "psd") and low not in (("y", "n") if tag == "t" else ("y", "n", "u")):
        lint.add(tag, f"{tag}={value} is not one of the defined values", reference="RFC 9989")
    elif tag in ("rua", "ruf"):
        uris = [u.strip(_WSP) for u in value.split(",")]
        if not value or any(not u for u in uris):
            lint.add(tag, f"{tag}= holds an empty URI", reference="RFC 7489 6.4")
        for uri in filter(None, uris):
            parsed, problem = parse_uri(uri)
            if problem:
                lint.add(tag, f"{tag}: {problem}", reference="RFC 7489 6.2")
            elif parsed and parsed.scheme != "mailto":
                lint.add(tag, f"{tag}: {uri} is not a mailto: URI; receivers need only "
                              "support mailto", "warn", "RFC 7489 6.2")


def report_uris(value: str) -> tuple[list[ReportUri], list[str]]:
    """The parsed URIs of a rua/ruf value and the invalid ones."""
    good, bad = [], []
    for uri in filter(None, (u.strip(_WSP) for u in value.split(","))):
        parsed, _ = parse_uri(uri)
        if parsed is None:
            bad.append(uri)
        else:
            good.append(parsed)
    return good, bad


def _valid_uris(value: str) -> str:
    good, _ = report_uris(value)
    return ",".join(u.uri + (f"!{u.size}" if u.size else "") for u in good)


def build(tags: dict[str, str], order: list[str]) -> str:
    """Tags as a record, v first and p second (the RFC 7489 ABNF order)."""
    rest = [t for t in dict.fromkeys(order) if t not in ("v", "p")]
    return "; ".join(f"{t}={tags[t]}" for t in ["v", "p", *rest] if t in tags)


def repair(text: str, lint: DmarcLint | None = None) -> str | None:
    """A valid record keeping what was valid: invalid and unknown tags dropped (report URIs
    filtered), a missing p= as none (RFC 7489 6.6.3 treats it so), v=DMARC1 first. None
    when nothing sensible remains or the result would not lint clean."""
    lint = lint or lint_dmarc(text)
    tags = {"v": "DMARC1", "p": "none"}
    for tag in lint.order:
        value = lint.tags[tag]
        if tag in ("v",) or tag not in KNOWN_TAGS:
            continue
        if tag in ("rua", "ruf"):
            value = _valid_uris(value)
            if value:
                tags[tag] = value
            continue
        if tag not in lint.bad_tags:
            tags[tag] = value.lower() if tag in ("p", "sp", "np", "adkim", "aspf") else value
    candidate = build(tags, ["v", "p", *lint.order])
    fixed = lint_dmarc(candidate)
    return candidate if fixed.valid else None


def with_tag(text: str, tag: str, value: str) -> str | None:
    """``text`` (repaired if need be) with ``tag`` set to ``value``; None if not valid."""
    lint = lint_dmarc(text)
    base = text if lint.valid else repair(text, lint)
    if base is None:
        return None
    lint = lint_dmarc(base)
    tags = dict(lint.tags)
    tags[tag] = value
    candidate = build(tags, [*lint.order, tag])
    return candidate if lint_dmarc(candidate).valid else None
