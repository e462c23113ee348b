"""What users type where a domain is expected, made into one: a URL's host, an address's domain,
an internationalised name as A-labels (IDNA 2008, RFC 5891), with a note saying so; anything
that is not a domain name is refused with the reason (no DNS question is wasted on it).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_NAME = 253  # RFC 1035 2.3.4, in text form without the final dot
MAX_LABEL = 63


class NotADomainError(ValueError):
    """The text is not a domain name (the message says why)."""


@dataclass(frozen=True)
class DomainInput:
    """A domain to check and, when it differs from what was typed, a note saying why."""

    name: str
    given: str
    note: str | None = None


def normalize_domain(text: str) -> DomainInput:
    """``text`` -> the domain it clearly means; raises ``NotADomainError`` otherwise."""
    given = text
    raw = text.strip()
    notes: list[str] = []
    if not raw:
        raise NotADomainError("empty domain")
    if "://" in raw:
        host = urlsplit(raw).hostname
        if not host:
            raise NotADomainError(f"{given!r} is a URL without a host name")
        raw = host
        notes.append("the host name of the URL")
    elif "@" in raw and not any(c.isspace() for c in raw):
        local, _, domain = raw.rpartition("@")
        if not local or not domain:
            raise NotADomainError(f"{given!r} is not a domain name or an address")
        raw = domain
        notes.append("the domain of the address")
    if any(c.isspace() for c in raw):
        raise NotADomainError(f"{given!r} holds more than one word: give one domain per line")
    name = raw.rstrip(".").lower()
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        pass
    else:
        raise NotADomainError(f"{given!r} is an IP address, not a domain (probe checks a server)")
    if not name.isascii():
        name = _a_labels(name, given)
        notes.append("the name in A-labels, IDNA 2008")
    _check_ldh(name, given)
    note = f"{given.strip()!r} -> {name} ({'; '.join(notes)})" if notes else None
    return DomainInput(name, given, note)


def _a_labels(name: str, given: str) -> str:
    import idna

    try:
        return str(idna.encode(name, uts46=True).decode("ascii"))
    except idna.IDNAError as exc:
        raise NotADomainError(f"{given!r} is not a valid internationalised name ({exc})") from None


def _check_ldh(name: str, given: str) -> None:
    """Letters, digits, hyphens (and underscores, which service names use) per label."""
    if len(name) > MAX_NAME:
        raise NotADomainError(f"{given!r} is longer than {MAX_NAME} characters")
    for label in name.split("."):
        if not label:
            raise NotADomainError(f"{given!r} has an empty label")
        if len(label) > MAX_LABEL:
            raise NotADomainError(f"{given!r} has a label longer than {MAX_LABEL} characters")
        if label.startswith("-") or label.endswith("-") or not all(
            c.isalnum() or c in "-_" for c in label
        ):
            raise NotADomainError(f"{given!r} is not a domain name (label {label!r})")
