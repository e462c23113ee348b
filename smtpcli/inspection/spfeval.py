"""SPF (RFC 7208) for the IP a message entered from and its envelope sender, with pyspf.

pyspf's DNS goes through smtpcli.dnsq.pyspf_bridge, bound to the configured resolver, so
``--nameserver`` is honoured and a failed lookup becomes pyspf's ``temperror``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smtpcli.dnsq.pyspf_bridge import pyspf_resolver, query_class
from smtpcli.dnsq.resolver import ResolverConfig
from smtpcli.results import Finding, Status

REF = "RFC 7208"


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


def evaluate_spf(
    ip: str | None,
    sender: str | None,
    helo: str | None,
    *,
    config: ResolverConfig,
    offline: bool = False,
) -> SpfOutcome:
    """SPF result for (ip, MAIL FROM sender, HELO); empty sender uses the HELO (RFC 7208 2.4)."""

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
        with pyspf_resolver(config):
            query = query_class()(i=ip, s=sender or "", h=helo or domain,
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
