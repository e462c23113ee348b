"""SPF (RFC 7208) for the IP a message entered from and its envelope sender, with pyspf.

pyspf asks DNS through its module-level ``DNSLookup`` function; for the duration of one check it
is replaced (under a lock) by one that asks the configured resolver, so ``--nameserver`` is
honoured and a failed lookup becomes pyspf's ``temperror``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from smtpcli.dnsq.resolver import ResolverConfig, make_resolver
from smtpcli.results import Finding, Status

REF = "RFC 7208"
_LOCK = threading.Lock()


@dataclass
class SpfOutcome:
    result: str  # pass fail softfail neutral none permerror temperror unknown
    ip: str | None
    sender: str | None
    helo: str | None
    domain: str | None
    explanation: str = ""
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result, "ip": self.ip, "sender": self.sender, "helo": self.helo,
                "domain": self.domain, "explanation": self.explanation}


def _lookup_factory(config: ResolverConfig) -> Any:
    import dns.exception
    import dns.resolver
    import spf

    resolver = make_resolver(config)

    def lookup(name: str, qtype: str, strict: Any = True, timeout: float = 20) -> list[Any]:
        out: list[Any] = []
        try:
            answer = resolver.resolve(name, qtype, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return out
        except dns.exception.DNSException as exc:
            # Timeouts, SERVFAIL, garbage: temperror (RFC 7208 2.6.6), never "no record".
            raise spf.TempError(f"DNS {name}/{qtype}: {exc or type(exc).__name__}") from exc
        if answer.rrset is None:
            return out
        for rdata in answer.rrset:
            if qtype in ("A", "AAAA"):
                out.append(((name, qtype), rdata.address))
            elif qtype == "MX":
                out.append(((name, qtype), (rdata.preference, rdata.exchange)))
            elif qtype == "PTR":
                out.append(((name, qtype), rdata.target.to_text(True)))
            elif qtype in ("TXT", "SPF"):
                out.append(((name, qtype), rdata.strings))
        return out

    return lookup


@contextmanager
def resolver_for_pyspf(config: ResolverConfig) -> Iterator[None]:
    """Route pyspf's DNS through ``config`` while the block runs."""
    import spf

    with _LOCK:
        saved = spf.DNSLookup
        spf.DNSLookup = _lookup_factory(config)
        try:
            yield
        finally:
            spf.DNSLookup = saved


def evaluate_spf(
    ip: str | None,
    sender: str | None,
    helo: str | None,
    *,
    config: ResolverConfig,
    offline: bool = False,
) -> SpfOutcome:
    """SPF result for (ip, MAIL FROM sender, HELO); empty sender uses the HELO (RFC 7208 2.4)."""
    import spf

    sender = (sender or "").strip().strip("<>") or None
    domain = sender.rsplit("@", 1)[1].lower() if sender and "@" in sender else (
        helo.lower() if helo else None)
    out = SpfOutcome("unknown", ip, sender, helo, domain)
    if offline:
        out.findings.append(Finding("spf.unknown", Status.INFO, "SPF not evaluated (--offline)"))
        return out
    if not ip:
        out.findings.append(Finding("spf.unknown", Status.INFO,
                                    "SPF not evaluated: no entering IP in the Received chain",
                                    fix="give the sending IP with --ip"))
        return out
    if not domain:
        out.findings.append(Finding("spf.unknown", Status.INFO,
                                    "SPF not evaluated: no envelope sender (Return-Path) or HELO",
                                    fix="give it with --sender"))
        return out
    try:
        with resolver_for_pyspf(config):
            query = spf.query(i=ip, s=sender or "", h=helo or domain,
                              timeout=config.timeout, querytime=config.timeout * 4)
            result, _code, explanation = query.check()
    except ValueError as exc:  # an address pyspf cannot use
        out.result, out.explanation = "permerror", str(exc)
    else:
        out.result, out.explanation = str(result), str(explanation or "")
    label = f"{domain} for {ip}"
    status, text = {
        "pass": (Status.OK, "passes"),
        "fail": (Status.FAIL, "fails (-all): the IP is not allowed"),
        "softfail": (Status.WARN, "soft-fails (~all): the IP is not allowed"),
        "neutral": (Status.INFO, "is neutral (?all)"),
        "none": (Status.WARN, "finds no SPF record"),
        "permerror": (Status.FAIL, "has a permanent error"),
        "temperror": (Status.ERROR, "could not be evaluated (DNS failed)"),
    }.get(out.result, (Status.WARN, out.result))
    out.findings.append(Finding(
        f"spf.{out.result}", status, f"SPF for {label} {text}",
        detail=out.explanation or None, subject=domain, reference=f"{REF} 2.6",
        data={"ip": ip, "sender": sender, "helo": helo}))
    return out
