"""DNS blocklists: every IPv4 MX address looked up in each zone (RFC 5782 2.1)."""

from __future__ import annotations

import asyncio
import ipaddress

from smtpcli.checks.common import CheckOptions, FamilyResult
from smtpcli.checks.mx import host_addresses, parse_mx
from smtpcli.dnsq.client import DnsClient, Lookup
from smtpcli.results import Status


def dnsbl_name(address: str, zone: str) -> str:
    """``2.0.0.127.zone`` (RFC 5782 2.1); IPv6 nibbles (RFC 5782 2.4)."""
    ip = ipaddress.ip_address(address)
    rev = ip.reverse_pointer.rsplit(".", 2)[0]  # strip in-addr.arpa / ip6.arpa
    return f"{rev}.{zone.rstrip('.')}"


async def mx_addresses(dns: DnsClient, domain: str) -> dict[str, list[str]]:
    """host -> addresses for every MX host (cached questions shared with the MX check)."""
    mx = await dns.query(domain, "MX")
    if not mx.ok:
        return {}
    hosts = [h for _, h in parse_mx(mx) if h != "."]
    found = await asyncio.gather(*(host_addresses(dns, h) for h in hosts))
    return {h: [t for lk in pair if lk.ok for t in lk.texts] for h, pair in zip(hosts, found, strict=True)}


async def check_dnsbl(dns: DnsClient, domain: str, opts: CheckOptions) -> FamilyResult:
    result = FamilyResult("dnsbl")
    if not opts.dnsbl_zones:
        return result
    hosts = await mx_addresses(dns, domain)
    pairs = [(h, a, z) for h, addrs in hosts.items() for a in addrs if ":" not in a
             for z in opts.dnsbl_zones]
    lookups: list[Lookup] = await asyncio.gather(
        *(dns.query(dnsbl_name(a, z), "A") for _, a, z in pairs))
    listed = []
    for (host, addr, zone), lookup in zip(pairs, lookups, strict=True):
        if lookup.failed:
            result.failed_lookup(lookup, f"blocklist {zone} for {addr}")
            continue
        if not lookup.ok:
            continue
        codes = lookup.texts
        if all(c.startswith("127.255.255.") for c in codes):
            # Spamhaus and others answer 127.255.255.x when they refuse the querier.
            result.add("dnsbl.refused", Status.INFO,
                       f"{zone} refused to answer for {addr} ({', '.join(codes)}); use a "
                       "resolver of your own", subject=f"{host} {addr}")
            continue
        listed.append({"host": host, "address": addr, "zone": zone, "codes": codes})
        result.add("dnsbl.listed", Status.FAIL, f"{addr} ({host}) is listed on {zone}"
                   f" ({', '.join(codes)})", subject=f"{host} {addr}",
                   reference="RFC 5782", data={"zone": zone, "codes": codes})
    result.facts = {"zones": list(opts.dnsbl_zones), "checked": len(pairs), "listed": listed}
    if pairs and not listed and not result.findings:
        result.add("dnsbl.clean", Status.OK,
                   f"{len({a for _, a, _ in pairs})} MX address(es) on none of "
                   f"{len(opts.dnsbl_zones)} blocklists")
    return result
