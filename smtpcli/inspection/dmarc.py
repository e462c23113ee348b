"""DMARC for one message (RFC 7489): policy discovery, identifier alignment, disposition.

The organisational domain comes from the Public Suffix List shipped in the ``publicsuffixlist``
package (RFC 7489 3.2); nothing is fetched at run time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from smtpcli.inspection.lookups import OfflineError, TxtLookups
from smtpcli.results import Finding, Status

REF = "RFC 7489"


@functools.lru_cache(maxsize=1)
def _psl() -> Any:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


@functools.lru_cache(maxsize=1024)
def organizational_domain(domain: str) -> str:
    """The organisational domain (RFC 7489 3.2): public suffix plus one label."""
    name = domain.strip().rstrip(".").lower()
    if not name:
        return name
    try:
        private = _psl().privatesuffix(name)
    except Exception:  # odd input (IDN errors...): fall back to the name itself
        private = None
    return private or name


def aligned(identifier: str | None, from_domain: str, mode: str) -> bool:
    """Identifier alignment (RFC 7489 3.1): 's' exact match, 'r' same organisational domain."""
    if not identifier:
        return False
    ident = identifier.rstrip(".").lower()
    frm = from_domain.rstrip(".").lower()
    if mode == "s":
        return ident == frm
    return organizational_domain(ident) == organizational_domain(frm)


@dataclass
class DmarcPolicy:
    record: str
    found_at: str
    tags: dict[str, str]

    @property
    def p(self) -> str:
        return self.tags.get("p", "none").lower()

    def policy_for(self, from_domain: str) -> str:
        """p=, or sp= when the record came from the organisational domain (RFC 7489 6.3)."""
        if self.found_at.lower() != f"_dmarc.{from_domain}".lower() and "sp" in self.tags:
            return self.tags["sp"].lower()
        return self.p

    @property
    def adkim(self) -> str:
        return self.tags.get("adkim", "r").lower()

    @property
    def aspf(self) -> str:
        return self.tags.get("aspf", "r").lower()

    @property
    def pct(self) -> int:
        try:
            return max(0, min(100, int(self.tags.get("pct", "100"))))
        except ValueError:
            return 100


def parse_dmarc(text: str) -> dict[str, str] | None:
    """Tags of a DMARC record, or None when it does not start with v=DMARC1."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags.setdefault(key.strip().lower(), value.strip())
    if tags.get("v", "").upper() != "DMARC1" or not text.strip().lower().startswith("v="):
        return None
    return tags


@dataclass
class DmarcOutcome:
    from_domain: str | None
    state: str  # pass | fail | none (no policy) | unknown (offline) | temperror | not-applicable
    policy: DmarcPolicy | None = None
    dkim_aligned: list[str] = field(default_factory=list)
    spf_aligned: bool = False
    disposition: str | None = None
    error: str | None = None
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        pol = self.policy
        return {
            "from_domain": self.from_domain, "result": self.state,
            "record": pol.record if pol else None, "found_at": pol.found_at if pol else None,
            "policy": pol.policy_for(self.from_domain or "") if pol else None,
            "adkim": pol.adkim if pol else None, "aspf": pol.aspf if pol else None,
            "pct": pol.pct if pol else None,
            "dkim_aligned_domains": self.dkim_aligned, "spf_aligned": self.spf_aligned,
            "disposition": self.disposition, "error": self.error,
        }


def discover_policy(from_domain: str, lookups: TxtLookups) -> tuple[DmarcPolicy | None, str | None]:
    """Look up _dmarc.<from>, then _dmarc.<org domain> (RFC 7489 6.6.3).

    Returns (policy, error); error is set when a lookup failed (never read as "no policy").
    """
    names = [f"_dmarc.{from_domain}"]
    org = organizational_domain(from_domain)
    if org != from_domain:
        names.append(f"_dmarc.{org}")
    for name in names:
        lookup = lookups.txt(name)
        if lookup.failed:
            return None, f"{name}: {lookup.error}"
        records = [(t, parse_dmarc(t)) for t in lookup.texts]
        valid = [(t, tags) for t, tags in records if tags is not None]
        if len(valid) == 1:
            return DmarcPolicy(valid[0][0], name, valid[0][1]), None
        # RFC 7489 6.6.3: several records (or none) at a name means no policy there.
    return None, None


def evaluate_dmarc(
    from_domain: str | None,
    *,
    dkim_pass_domains: list[str],
    spf_result: str | None,
    spf_domain: str | None,
    lookups: TxtLookups,
) -> DmarcOutcome:
    """Alignment and disposition for the message's From domain."""
    if not from_domain:
        out = DmarcOutcome(None, "not-applicable")
        out.findings.append(Finding("dmarc.no-from-domain", Status.FAIL,
                                    "no single From domain, so DMARC cannot apply",
                                    reference=f"{REF} 6.6.1"))
        return out
    out = DmarcOutcome(from_domain, "unknown")
    try:
        policy, error = discover_policy(from_domain, lookups)
    except OfflineError:
        out.findings.append(Finding("dmarc.unknown", Status.INFO,
                                    "DMARC not evaluated (--offline: policy not looked up)",
                                    subject=from_domain))
        return out
    if error:
        out.state, out.error = "temperror", error
        out.findings.append(Finding("dmarc.lookup-failed", Status.ERROR,
                                    "the DMARC policy lookup failed", detail=error,
                                    subject=from_domain, reference=f"{REF} 6.6.3"))
        return out
    out.policy = policy
    adkim = policy.adkim if policy else "r"
    aspf = policy.aspf if policy else "r"
    out.dkim_aligned = sorted({d for d in dkim_pass_domains if aligned(d, from_domain, adkim)})
    out.spf_aligned = spf_result == "pass" and aligned(spf_domain, from_domain, aspf)
    for d in out.dkim_aligned:
        out.findings.append(Finding(
            "dmarc.aligned", Status.OK, f"DKIM d={d} passes and is aligned with From",
            subject=from_domain, data={"identifier": "dkim", "domain": d, "mode": adkim}))
    if out.spf_aligned:
        out.findings.append(Finding(
            "dmarc.aligned", Status.OK, f"SPF for {spf_domain} passes and is aligned with From",
            subject=from_domain, data={"identifier": "spf", "domain": spf_domain, "mode": aspf}))
    if policy is None:
        out.state = "none"
        out.findings.append(Finding(
            "dmarc.no-policy", Status.WARN, f"{from_domain} publishes no DMARC policy",
            subject=from_domain, reference=f"{REF} 6.6.3",
            fix=f'publish "_dmarc.{from_domain} TXT v=DMARC1; p=none; rua=mailto:..." to start'))
        return out
    passed = bool(out.dkim_aligned) or out.spf_aligned
    requested = policy.policy_for(from_domain)
    out.state = "pass" if passed else "fail"
    # RFC 7489 6.6.4: pct < 100 means only that share gets the policy; the rest one step less.
    out.disposition = "none" if passed else requested
    if passed:
        out.findings.append(Finding(
            "dmarc.pass", Status.OK, f"DMARC passes for {from_domain} (p={requested})",
            subject=from_domain, reference=f"{REF} 4.2"))
    else:
        reasons = []
        if not dkim_pass_domains:
            reasons.append("no DKIM signature passes")
        else:
            reasons.append(f"passing DKIM domains {', '.join(dkim_pass_domains)} are not "
                           f"aligned ({'strict' if adkim == 's' else 'relaxed'})")
        if spf_result != "pass":
            reasons.append(f"SPF is {spf_result or 'unknown'}")
        else:
            reasons.append(f"SPF domain {spf_domain} is not aligned "
                           f"({'strict' if aspf == 's' else 'relaxed'})")
        out.findings.append(Finding(
            "dmarc.fail", Status.FAIL,
            f"DMARC fails for {from_domain}: a receiver would apply p={requested}",
            detail="; ".join(reasons), subject=from_domain, reference=f"{REF} 6.6.2",
            data={"disposition": requested, "pct": policy.pct},
            fix="sign with d= the From domain (or its organisational domain) and/or send "
                "from an envelope sender in that domain"))
    return out
