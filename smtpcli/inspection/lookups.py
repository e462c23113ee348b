"""Blocking TXT lookups through the configured resolver, remembered per run.

dkimpy, the ARC verifier and the DMARC policy lookup all ask TXT questions; they go through
``make_resolver(config)`` (so ``--nameserver`` is honoured) and every outcome is recorded, so a
failed lookup is reported as failed and never as "key not found" or "no policy".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smtpcli.dnsq.client import Lookup, LookupState, lookup_from_error, txt_string
from smtpcli.dnsq.resolver import ResolverConfig, make_resolver


class OfflineError(Exception):
    """Raised instead of a lookup in --offline mode."""


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a DNS name (empty label, label or name too long), or None.

    A key name built from a signature's tags (``s=``, ``d=``) that is no DNS name is a fault of
    the signature (RFC 6376 3.5, RFC 8617 5.2): a permanent failure, never a failed lookup.
    """
    import dns.exception
    import dns.name

    try:
        dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        why = (exc.__doc__ or type(exc).__name__).strip().rstrip(".")
        return f"{name!r} is not a valid DNS name ({why})"
    except (UnicodeError, ValueError) as exc:
        return f"{name!r} is not a valid DNS name ({exc})"
    return None


@dataclass
class TxtLookups:
    """Asks TXT questions once each; ``offline`` makes every question fail with OfflineError."""

    config: ResolverConfig = field(default_factory=ResolverConfig)
    offline: bool = False
    done: dict[str, Lookup] = field(default_factory=dict)
    malformed: list[str] = field(default_factory=list)  # key names no question was asked for
    _resolver: Any = None

    def txt(self, name: str) -> Lookup:
        """The TXT lookup for ``name`` (cached); raises OfflineError when offline."""
        key = name.rstrip(".").lower()
        if self.offline:
            raise OfflineError(key)
        if key in self.done:
            return self.done[key]
        lookup = self._ask(key)
        self.done[key] = lookup
        return lookup

    def _ask(self, name: str) -> Lookup:
        if self._resolver is None:
            self._resolver = make_resolver(self.config)  # first, so dnspython loads lean
        try:
            answer = self._resolver.resolve(name + ".", "TXT", raise_on_no_answer=False)
        except Exception as exc:  # timeout, SERVFAIL, garbage: a failed lookup, never "absent"
            return lookup_from_error(name, "TXT", exc)
        if answer.rrset is None:
            return Lookup(name, "TXT", LookupState.NODATA)
        records = list(answer.rrset)
        return Lookup(name, "TXT", LookupState.ANSWER, records=records,
                      texts=[txt_string(r) for r in records], ttl=answer.rrset.ttl)

    def failed(self) -> list[Lookup]:
        return [lk for lk in self.done.values() if lk.failed]

    def dkim_dnsfunc(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        """A ``dnsfunc`` for dkimpy: the TXT text, None when absent, DnsTimeoutError on failure."""
        import dkim

        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        if name_problem(text) is not None:
            self.malformed.append(name_problem(text) or text)
            return None  # no question can be asked: the signature is malformed, not the DNS
        try:
            lookup = self.txt(text)
        except OfflineError as exc:
            raise dkim.DnsTimeoutError(f"offline: {text} not looked up") from exc
        if lookup.failed:
            raise dkim.DnsTimeoutError(f"{text}: {lookup.error}")
        if not lookup.ok or not lookup.texts:
            return None
        # RFC 6376 3.6.2.2: several TXT records at a key name give undefined results; dkimpy
        # uses the first one, and so do we (the key findings name the ambiguity).
        return lookup.texts[0].encode("utf-8", "replace")
