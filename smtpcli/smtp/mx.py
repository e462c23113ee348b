"""Where mail for a domain goes: MX hosts in preference order with their addresses (RFC 5321 5.1).

Every question goes through the configured resolver (``smtpcli.dnsq``, so --nameserver holds).
A domain without MX records is its own implicit MX (its A/AAAA, RFC 5321 5.1); a null MX
(RFC 7505: a single ``MX 0 .``) means the domain accepts no mail, which stops delivery with a
clear error. A failed lookup is an error (exit 3), never "no MX".
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from smtpcli.dnsq.client import DnsClient, Lookup
from smtpcli.dnsq.resolver import ResolverConfig
from smtpcli.errors import DnsError, ExitCode, SmtpcliError


class UndeliverableDomainError(SmtpcliError):
    """DNS says the domain takes no mail: it does not exist, or it publishes a null MX."""

    exit_code = ExitCode.PERMANENT
    kind = "no-mail-domain"


@dataclass
class MxHost:
    """One place to deliver to; ``implicit`` when it is the domain itself (no MX records)."""

    host: str
    preference: int
    addresses: list[str] = field(default_factory=list)
    implicit: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"host": self.host, "preference": self.preference,
                               "addresses": self.addresses}
        if self.implicit:
            out["implicit"] = True
        if self.error:
            out["error"] = self.error
        return out


def _families(family: int) -> tuple[str, ...]:
    # IPv4 first: the loopback-only lab and most MX hosts answer there; -6 / -4 restrict.
    return {4: ("A",), 6: ("AAAA",)}.get(family, ("A", "AAAA"))


async def _addresses(client: DnsClient, host: str, family: int) -> tuple[list[str], str | None]:
    lookups: list[Lookup] = await client.query_many([(host, t) for t in _families(family)])
    addresses = [text for lk in lookups if lk.ok for text in lk.texts]
    failures = [f"{lk.rdtype} {lk.error}" for lk in lookups if lk.failed]
    if addresses:
        return addresses, None
    if failures:
        return [], f"address lookup failed: {'; '.join(failures)}"
    return [], "no A/AAAA records"


async def resolve_mx_async(
    domain: str, client: DnsClient, *, family: int = 0, rng: random.Random | None = None
) -> list[MxHost]:
    """MX hosts of ``domain`` with addresses, best first (see module docstring)."""
    name = domain.rstrip(".").lower()
    mx = await client.query(name, "MX")
    if mx.failed:
        raise DnsError(f"MX lookup for {name} failed: {mx.error}", hint="check --nameserver")
    if mx.state.value == "nxdomain":
        raise UndeliverableDomainError(f"the domain {name} does not exist (NXDOMAIN)")
    hosts: list[MxHost] = []
    if mx.ok:
        records = [(int(r.preference), str(r.exchange).rstrip(".")) for r in mx.records]
        if any(target == "" for _, target in records):
            # RFC 7505 3: "MX 0 ." says the domain accepts no mail at all.
            raise UndeliverableDomainError(
                f"{name} publishes a null MX (RFC 7505): it accepts no mail"
            )
        rng = rng or random.Random()
        # RFC 5321 5.1: lowest preference first; hosts of equal preference in random order.
        records.sort(key=lambda r: (r[0], rng.random()))
        hosts = [MxHost(target.lower(), pref) for pref, target in records]
    else:
        # RFC 5321 5.1: no MX records -> the domain itself is the implicit MX, preference 0.
        hosts = [MxHost(name, 0, implicit=True)]
    results = await asyncio.gather(*(_addresses(client, h.host, family) for h in hosts))
    for host, (addresses, error) in zip(hosts, results, strict=True):
        host.addresses, host.error = addresses, error
    if not any(h.addresses for h in hosts):
        detail = "; ".join(f"{h.host}: {h.error}" for h in hosts)
        if any(h.error and "failed" in h.error for h in hosts):
            raise DnsError(f"no address for the mail hosts of {name}: {detail}")
        raise UndeliverableDomainError(f"no address for the mail hosts of {name}: {detail}")
    return hosts


def resolve_mx(
    domain: str, config: ResolverConfig, *, family: int = 0, rng: random.Random | None = None
) -> list[MxHost]:
    """Blocking wrapper of ``resolve_mx_async`` with a fresh client for ``config``."""
    return asyncio.run(resolve_mx_async(domain, DnsClient(config), family=family, rng=rng))


def resolve_host(host: str, config: ResolverConfig, *, family: int = 0) -> list[str]:
    """A and/or AAAA addresses of one host through the configured resolver."""

    async def run() -> tuple[list[str], str | None]:
        return await _addresses(DnsClient(config), host, family)

    addresses, error = asyncio.run(run())
    if not addresses:
        if error and "failed" in error:
            raise DnsError(f"cannot resolve {host}: {error}")
        raise DnsError(f"cannot resolve {host}: {error or 'no address'}")
    return addresses
