"""DNSSEC status of the domain: the AD bit a validating resolver sets (RFC 4035 3.2.3).

The AD bit is only as trustworthy as the path to the resolver (RFC 6840 5.7): use a local
validating resolver for an authoritative answer.
"""

from __future__ import annotations

from smtpcli.checks.common import CheckOptions, FamilyResult
from smtpcli.dnsq.client import DnsClient
from smtpcli.results import Status


async def check_dnssec(dns: DnsClient, domain: str, opts: CheckOptions) -> FamilyResult:
    result = FamilyResult("dnssec")
    lookup = await dns.query(domain, "MX")  # shared with the MX check: no extra question
    if lookup.failed:
        result.failed_lookup(lookup, "DNSSEC status")
        return result
    result.facts["authenticated"] = lookup.authenticated
    unknown = None if lookup.authenticated else dns.dnssec_unknown(domain)
    if unknown is not None:
        result.add("dnssec.unknown", Status.INFO, f"DNSSEC status of {domain} unknown: {unknown}",
                   detail="Check it against DNS with a validating resolver.")
    elif lookup.authenticated:
        result.add("dnssec.signed", Status.OK, "answers are DNSSEC-validated (AD bit set)")
    else:
        result.add("dnssec.unsigned", Status.WARN,
                   "answers are not DNSSEC-validated (no AD bit): DANE is impossible and "
                   "records can be spoofed", reference="RFC 4035 3.2.3",
                   detail="The AD bit comes from the resolver; ask a validating one.")
    return result
