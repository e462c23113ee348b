"""Shared pieces of the domain checks: options, per-family results, lookup-failure findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smtpcli.dnsq.client import DnsClient, Lookup
from smtpcli.results import Finding, Status

#: Blocklists asked by default for every MX address (`--dnsbl` replaces, `--no-dnsbl` disables).
DEFAULT_DNSBL: tuple[str, ...] = ("zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org")

#: Selectors probed when none is given (RFC 6376 3.1 leaves naming to the signer).
COMMON_DKIM_SELECTORS: tuple[str, ...] = (
    "default", "dkim", "mail", "google", "selector1", "selector2", "k1", "k2", "k3", "s1", "s2",
    "mandrill", "smtp", "key1", "mxvault", "sig1",
)


@dataclass(frozen=True)
class CheckOptions:
    """What the user asked for beyond the domain name."""

    dkim_selectors: tuple[str, ...] = ()
    probe_common_selectors: bool = True
    dnsbl_zones: tuple[str, ...] = DEFAULT_DNSBL
    ip: str | None = None
    sender: str | None = None
    helo: str | None = None
    cafile: str | None = None
    mta_sts_port: int = 443
    timeout: float = 10.0
    check_ptr: bool = True


@dataclass
class FamilyResult:
    """The findings and facts of one record family (``mx``, ``spf``...)."""

    family: str
    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, id: str, status: Status, summary: str, **kwargs: Any) -> Finding:
        finding = Finding(id=id, status=status, summary=summary, **kwargs)
        self.findings.append(finding)
        return finding

    def failed_lookup(self, lookup: Lookup, why: str = "") -> Finding:
        """A lookup that failed: status error, never 'missing' (DESIGN.md)."""
        name = lookup.name.rstrip(".")
        return self.add(
            "dns.lookup-failed", Status.ERROR,
            f"{lookup.rdtype} lookup for {name} failed: {lookup.error or 'unknown error'}",
            subject=name,
            detail=f"needed for: {why}" if why else None,
            data={"name": name, "type": lookup.rdtype, "reason": lookup.error},
        )


async def versioned_txt(
    dns: DnsClient, result: FamilyResult, name: str, prefix: str, what: str
) -> list[str] | None:
    """The TXT records at ``name`` that start with ``prefix`` (``v=STSv1``...); ``None`` when
    the lookup failed, after adding the ``dns.lookup-failed`` finding (never "missing")."""
    lookup = await dns.query(name, "TXT")
    if lookup.failed:
        result.failed_lookup(lookup, what)
        return None
    return txt_records(lookup, prefix)


def txt_records(lookup: Lookup, prefix: str) -> list[str]:
    """TXT strings starting with a version tag such as ``v=spf1`` (case-insensitive)."""
    want = prefix.lower()
    out = []
    for text in lookup.texts:
        low = text.strip().lower()
        if low == want or low.startswith(want + " ") or low.startswith(want + ";"):
            out.append(text)
    return out


async def txt(dns: DnsClient, name: str) -> Lookup:
    return await dns.query(name, "TXT")


def parse_tags(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Split a ``tag=value; tag=value`` list (RFC 6376 3.2, RFC 7489 6.4); returns pairs and the
    pieces that are not ``tag=value``."""
    pairs: list[tuple[str, str]] = []
    bad: list[str] = []
    for part in text.split(";"):
        piece = part.strip()
        if not piece:
            continue
        if "=" not in piece:
            bad.append(piece)
            continue
        tag, _, value = piece.partition("=")
        tag = tag.strip()
        if not tag or not all(c.isalnum() or c == "_" for c in tag):
            bad.append(piece)
            continue
        pairs.append((tag, "".join(value.split())))
    return pairs, bad
