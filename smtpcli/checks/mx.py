"""MX checks (RFC 5321 5.1, RFC 7505 null MX, RFC 2181 10.3 no CNAME targets), with addresses,
PTR and forward-confirmed reverse DNS of every MX address."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from smtpcli.checks.common import CheckOptions, FamilyResult
from smtpcli.dnsq.client import DnsClient, Lookup
from smtpcli.results import Status


def reverse_name(address: str) -> str:
    """The in-addr.arpa / ip6.arpa name of an address."""
    return ipaddress.ip_address(address).reverse_pointer


def parse_mx(lookup: Lookup) -> list[tuple[int, str]]:
    """(preference, exchange) pairs, exchange without the trailing dot, in preference order."""
    pairs = []
    for rdata in lookup.records:
        pairs.append((int(rdata.preference), str(rdata.exchange).rstrip(".").lower() or "."))
    return sorted(pairs)


async def host_addresses(dns: DnsClient, host: str) -> tuple[Lookup, Lookup]:
    a, aaaa = await asyncio.gather(dns.query(host, "A"), dns.query(host, "AAAA"))
    return a, aaaa


async def _fcrdns(dns: DnsClient, address: str) -> dict[str, Any]:
    """PTR of the address, then the addresses of each PTR name (FCrDNS)."""
    ptr = await dns.query(reverse_name(address), "PTR")
    out: dict[str, Any] = {"address": address, "ptr": ptr, "names": [], "confirmed": False}
    if not ptr.ok:
        return out
    names = [t.rstrip(".").lower() for t in ptr.texts]
    out["names"] = names
    family = "AAAA" if ":" in address else "A"
    forwards = await asyncio.gather(*(dns.query(n, family) for n in names))
    out["forward"] = forwards
    want = ipaddress.ip_address(address)
    for fwd in forwards:
        if fwd.ok and any(ipaddress.ip_address(t) == want for t in fwd.texts):
            out["confirmed"] = True
    return out


async def _examine_host(
    dns: DnsClient, host: str, opts: CheckOptions
) -> dict[str, Any]:
    cname_l, (a, aaaa) = await asyncio.gather(dns.query(host, "CNAME"), host_addresses(dns, host))
    addrs = [t for lk in (a, aaaa) if lk.ok for t in lk.texts]
    rdns = []
    if opts.check_ptr and addrs:
        rdns = list(await asyncio.gather(*(_fcrdns(dns, ad) for ad in addrs)))
    return {"host": host, "cname": cname_l, "a": a, "aaaa": aaaa, "addresses": addrs,
            "rdns": rdns}


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


async def check_mx(dns: DnsClient, domain: str, opts: CheckOptions) -> FamilyResult:
    result = FamilyResult("mx")
    lookup = await dns.query(domain, "MX")
    result.facts["lookup"] = lookup.state.value
    if lookup.failed:
        result.failed_lookup(lookup, "MX records")
        return result
    if not lookup.ok:
        # RFC 5321 5.1: without MX, mail goes to the domain's A/AAAA (implicit MX).
        a, aaaa = await host_addresses(dns, domain)
        implicit = [t for lk in (a, aaaa) if lk.ok for t in lk.texts]
        for lk in (a, aaaa):
            if lk.failed:
                result.failed_lookup(lk, "implicit MX (RFC 5321 5.1)")
        result.facts["implicit_mx"] = implicit
        result.add(
            "mx.missing", Status.FAIL if not implicit else Status.WARN,
            "no MX records" + (f"; mail falls back to the A/AAAA records ({', '.join(implicit)})"
                               if implicit else " and no address: the domain cannot receive mail"),
            reference="RFC 5321 5.1",
            fix=f"{domain}. IN MX 10 mail.{domain}.  (or a null MX: {domain}. IN MX 0 .)",
        )
        return result
    pairs = parse_mx(lookup)
    result.facts["records"] = [f"{p} {h}" for p, h in pairs]
    nulls = [p for p in pairs if p[1] == "."]
    if nulls:
        if len(pairs) == 1 and pairs[0][0] == 0:
            result.add("mx.null", Status.INFO,
                       "null MX: the domain declares that it accepts no mail",
                       reference="RFC 7505 3")
            result.facts["null_mx"] = True
            return result
        result.add("mx.null-mixed", Status.FAIL,
                   "a null MX (\".\") mixed with other MX records, or with a non-zero preference",
                   reference="RFC 7505 3", fix=f"{domain}. IN MX 0 .  (alone), or remove it")
        pairs = [p for p in pairs if p[1] != "."]
    hosts = [h for _, h in pairs]
    dupes = sorted({h for h in hosts if hosts.count(h) > 1})
    if dupes:
        result.add("mx.duplicate", Status.WARN, f"MX host listed more than once: {', '.join(dupes)}",
                   reference="RFC 5321 5.1")
    unique = list(dict.fromkeys(hosts))
    literals = [h for h in unique if _is_ip(h)]
    for h in literals:
        result.add("mx.ip-literal", Status.FAIL, f"MX target {h} is an IP address, not a host name",
                   subject=h, reference="RFC 5321 5.1 / RFC 7505",
                   fix=f"point the MX at a name with an A record for {h}")
    names = [h for h in unique if h not in literals]
    if len(unique) == 1:
        result.add("mx.single", Status.INFO, "only one MX host: no fallback while it is down",
                   subject=unique[0], reference="RFC 5321 5.1")
    hosts_info = list(await asyncio.gather(*(_examine_host(dns, h, opts) for h in names)))
    facts_hosts = []
    for info in hosts_info:
        host = info["host"]
        cname: Lookup = info["cname"]
        if cname.failed:
            result.failed_lookup(cname, f"CNAME check of MX host {host}")
        elif cname.ok:
            result.add("mx.cname", Status.FAIL,
                       f"MX host {host} is an alias (CNAME to {cname.texts[0].rstrip('.')})",
                       subject=host, reference="RFC 2181 10.3 / RFC 5321 5.1",
                       fix=f"point the MX at {cname.texts[0].rstrip('.')} directly")
        for lk in (info["a"], info["aaaa"]):
            if lk.failed:
                result.failed_lookup(lk, f"address of MX host {host}")
        if not info["addresses"] and not (info["a"].failed or info["aaaa"].failed):
            result.add("mx.no-address", Status.FAIL, f"MX host {host} has no A or AAAA record",
                       subject=host, reference="RFC 5321 5.1")
        rdns_facts = []
        for entry in info["rdns"]:
            ptr: Lookup = entry["ptr"]
            addr = entry["address"]
            rdns_facts.append({"address": addr, "ptr": entry["names"],
                               "fcrdns": entry["confirmed"]})
            if ptr.failed:
                result.failed_lookup(ptr, f"reverse DNS of {addr} ({host})")
            elif not ptr.ok:
                result.add("mx.ptr-missing", Status.WARN,
                           f"{addr} ({host}) has no PTR record; many receivers distrust it",
                           subject=f"{host} {addr}", reference="RFC 1912 2.1")
            elif not entry["confirmed"]:
                for fwd in entry.get("forward", []):
                    if fwd.failed:
                        result.failed_lookup(fwd, f"forward-confirmation of {addr}")
                if not any(f.failed for f in entry.get("forward", [])):
                    result.add("mx.fcrdns-mismatch", Status.WARN,
                               f"{addr} ({host}) has PTR {', '.join(entry['names'])}, which does"
                               " not resolve back to it", subject=f"{host} {addr}",
                               reference="RFC 8601 3 (iprev)")
        facts_hosts.append({"host": host, "addresses": info["addresses"], "rdns": rdns_facts})
    result.facts["hosts"] = facts_hosts
    if not any(f.status.rank >= Status.WARN.rank for f in result.findings):
        result.add("mx.ok", Status.OK, f"{len(unique)} MX host(s), all with addresses")
    return result
