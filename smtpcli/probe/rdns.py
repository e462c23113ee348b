"""Reverse DNS of a server address: PTR names, forward-confirmed (FCrDNS), banner-name match.

Every question goes through the configured resolver (``smtpcli.dnsq.DnsClient``). A failed lookup
is reported as ``error``, never as "missing" (DESIGN: lookup failed is not absent).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from smtpcli.dnsq.client import DnsClient


@dataclass
class ReverseDns:
    """``state``: ``ok`` (a PTR name resolves back to the address), ``mismatch`` (PTR names, none
    forward-confirmed), ``missing`` (no PTR record) or ``error`` (a lookup failed)."""

    address: str
    state: str
    names: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    banner_name: str | None = None
    banner_match: bool | None = None
    error: str | None = None

    def set_banner_name(self, name: str | None) -> None:
        """Compare the greeting's host name with the PTR names (once the greeting is known)."""
        self.banner_name = name
        self.banner_match = None if name is None or self.state == "error" else (
            name.lower().rstrip(".") in self.names)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "address": self.address, "state": self.state, "ptr": self.names,
            "forward_confirmed": self.confirmed,
        }
        if self.banner_name is not None:
            out["banner_name"] = self.banner_name
            out["banner_match"] = self.banner_match
        if self.error:
            out["error"] = self.error
        return out


def reverse_name(address: str) -> str:
    """``127.0.0.1`` -> ``1.0.0.127.in-addr.arpa.`` (RFC 1035 3.5, RFC 3596 2.5 for IPv6)."""
    import dns.reversename

    return str(dns.reversename.from_address(address))


def banner_hostname(banner_text: str) -> str | None:
    """The name a server gives in its greeting (RFC 5321 4.3.1: ``220 <domain> ...``)."""
    first = banner_text.split("\n", 1)[0].strip()
    word = first.split(" ", 1)[0] if first else ""
    return word.rstrip(".").lower() or None


async def reverse_dns(client: DnsClient, address: str, banner_name: str | None = None) -> ReverseDns:
    """PTR of ``address``, then A/AAAA of each PTR name, compared with ``address``."""
    import ipaddress

    ptr = await client.query(reverse_name(address), "PTR")
    result = ReverseDns(address, "missing", banner_name=banner_name)
    if ptr.failed:
        result.state, result.error = "error", f"PTR lookup failed: {ptr.error}"
        return result
    if not ptr.ok:
        return result
    result.names = [t.rstrip(".").lower() for t in ptr.texts]
    rdtype = "AAAA" if ":" in address else "A"
    lookups = await asyncio.gather(*(client.query(n, rdtype) for n in result.names))
    want = ipaddress.ip_address(address)
    failures: list[str] = []
    for name, lookup in zip(result.names, lookups, strict=True):
        if lookup.failed:
            failures.append(f"{name}: {lookup.error}")
        elif lookup.ok and any(ipaddress.ip_address(t) == want for t in lookup.texts):
            result.confirmed.append(name)
    if result.confirmed:
        result.state = "ok"
    elif failures:
        result.state, result.error = "error", "forward lookup failed: " + "; ".join(failures)
    else:
        result.state = "mismatch"
    result.set_banner_name(banner_name)
    return result
