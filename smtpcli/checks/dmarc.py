"""DMARC (RFC 7489): one record at _dmarc.<domain> or the organisational domain, syntax,
policy strength, pct, rua/ruf URIs and the external-destination authorisation (7.1)."""

from __future__ import annotations

import asyncio

from smtpcli.checks.common import CheckOptions, FamilyResult, parse_tags, txt_records
from smtpcli.checks.message.dmarc import organizational_domain  # RFC 7489 3.2, shared with inspect
from smtpcli.dnsq.client import DnsClient, Lookup
from smtpcli.results import Status

POLICIES = ("none", "quarantine", "reject")
KNOWN_TAGS = {"v", "p", "sp", "pct", "rua", "ruf", "adkim", "aspf", "fo", "rf", "ri", "np", "t",
              "psd"}


def parse_dmarc(text: str) -> tuple[dict[str, str], list[str]]:
    """Tags and syntax problems of a DMARC record (RFC 7489 6.3, 6.4)."""
    pairs, bad = parse_tags(text)
    problems = [f"not tag=value: {b!r}" for b in bad]
    tags: dict[str, str] = {}
    for tag, value in pairs:
        tag = tag.lower()
        if tag in tags:
            problems.append(f"duplicate tag {tag}")
        tags[tag] = value
    if not pairs or pairs[0][0] != "v" or pairs[0][1] != "DMARC1":
        problems.append("v=DMARC1 must come first")
    if "p" not in tags:
        problems.append("p= is required")
    for tag in ("p", "sp", "np"):
        if tag in tags and tags[tag].lower() not in POLICIES:
            problems.append(f"{tag}={tags[tag]} is not none, quarantine or reject")
    for tag in ("adkim", "aspf"):
        if tag in tags and tags[tag].lower() not in ("r", "s"):
            problems.append(f"{tag}={tags[tag]} is not r or s")
    # isdecimal, not isdigit: '²' is a digit that int() rejects.
    if "pct" in tags and not (tags["pct"].isdecimal() and 0 <= int(tags["pct"]) <= 100):
        problems.append(f"pct={tags['pct']} is not 0-100")
    if "ri" in tags and not tags["ri"].isdecimal():
        problems.append(f"ri={tags['ri']} is not a number")
    if "fo" in tags and any(p not in ("0", "1", "d", "s") for p in tags["fo"].split(":")):
        problems.append(f"fo={tags['fo']} is not a list of 0, 1, d, s")
    unknown = sorted(set(tags) - KNOWN_TAGS)
    if unknown:
        problems.append("unknown tags: " + ", ".join(unknown))
    return tags, problems


def parse_report_uris(value: str) -> tuple[list[str], list[str]]:
    """Mailbox domains of rua/ruf and the invalid URIs (RFC 7489 6.2: mailto URIs, optional !size)."""
    domains, invalid = [], []
    for uri in filter(None, (u.strip() for u in value.split(","))):
        target = uri.split("!", 1)[0]
        if not target.lower().startswith("mailto:"):
            invalid.append(uri)
            continue
        address = target[7:]
        local, at, host = address.rpartition("@")
        if not at or not local or "." not in host or not host.strip("."):
            invalid.append(uri)
            continue
        domains.append(host.rstrip(".").lower())
    return domains, invalid


async def find_record(dns: DnsClient, domain: str) -> tuple[Lookup, Lookup | None, str]:
    """TXT at _dmarc.<domain> and, concurrently, at the organisational domain (RFC 7489 6.6.3)."""
    org = organizational_domain(domain)
    if org == domain:
        return await dns.query(f"_dmarc.{domain}", "TXT"), None, org
    own, orgl = await asyncio.gather(dns.query(f"_dmarc.{domain}", "TXT"),
                                     dns.query(f"_dmarc.{org}", "TXT"))
    return own, orgl, org


async def check_dmarc(
    dns: DnsClient, domain: str, opts: CheckOptions, record: str | None = None
) -> FamilyResult:
    result = FamilyResult("dmarc")
    where = f"_dmarc.{domain}"
    if record is None:
        own, org_lookup, org = await find_record(dns, domain)
        if own.failed:
            result.failed_lookup(own, "DMARC record")
            return result
        records = txt_records(own, "v=DMARC1")
        if not records and org_lookup is not None:
            if org_lookup.failed:
                result.failed_lookup(org_lookup, "DMARC record of the organisational domain")
                return result
            records = txt_records(org_lookup, "v=DMARC1")
            where = f"_dmarc.{org}"
        if not records:
            result.add("dmarc.missing", Status.FAIL, f"no DMARC record at _dmarc.{domain}",
                       reference="RFC 7489 6.1",
                       fix=f'_dmarc.{domain}. IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@{domain}"')
            return result
        if len(records) > 1:
            # RFC 7489 6.6.3: more than one record means no DMARC at all.
            result.add("dmarc.multiple", Status.FAIL,
                       f"{len(records)} DMARC records at {where}: receivers ignore them all",
                       reference="RFC 7489 6.6.3", data={"records": records})
    else:
        records = [record]
    text = records[0]
    result.facts.update({"name": where, "records": records})
    tags, problems = parse_dmarc(text)
    result.facts["tags"] = tags
    if problems:
        result.add("dmarc.syntax", Status.FAIL, "DMARC record: " + "; ".join(problems),
                   reference="RFC 7489 6.4", data={"problems": problems},
                   fix="; ".join(f"{t}={v}" for t, v in _valid_pairs(text)))
    policy = tags.get("p", "none").lower()
    sub = tags.get("sp", policy).lower()
    result.facts["policy"] = policy
    fixed = _with_tag(text, "p", "quarantine")
    if policy == "none":
        result.add("dmarc.policy-none", Status.WARN,
                   "p=none: receivers only monitor, spoofed mail is still delivered",
                   reference="RFC 7489 6.3", fix=fixed)
    if policy in POLICIES and sub in POLICIES and POLICIES.index(sub) < POLICIES.index(policy):
        result.add("dmarc.subdomain-weaker", Status.WARN,
                   f"sp={sub} is weaker than p={policy}: subdomains can be spoofed",
                   reference="RFC 7489 6.3", fix=_with_tag(text, "sp", policy))
    pct = tags.get("pct", "100")
    if pct.isdecimal() and int(pct) < 100:
        result.add("dmarc.pct-partial", Status.WARN,
                   f"pct={pct}: the policy applies to only {pct}% of failing mail",
                   reference="RFC 7489 6.3", fix=_with_tag(text, "pct", "100"))
    if "rua" not in tags:
        result.add("dmarc.no-rua", Status.INFO, "no rua=: you receive no aggregate reports",
                   reference="RFC 7489 7.2", fix=text.rstrip("; ") + f"; rua=mailto:dmarc@{domain}")
    policy_domain = where.removeprefix("_dmarc.")
    await _check_uris(dns, policy_domain, tags, result)
    if not any(f.status.rank >= Status.WARN.rank for f in result.findings):
        result.add("dmarc.ok", Status.OK, f"DMARC p={policy} published at {where}")
    return result


async def _check_uris(dns: DnsClient, domain: str, tags: dict[str, str],
                      result: FamilyResult) -> None:
    external: dict[str, str] = {}
    org = organizational_domain(domain)
    for tag in ("rua", "ruf"):
        if tag not in tags:
            continue
        dests, invalid = parse_report_uris(tags[tag])
        for uri in invalid:
            result.add("dmarc.rua-invalid", Status.FAIL,
                       f"{tag}={uri} is not a valid mailto: URI", reference="RFC 7489 6.2")
        for dest in dests:
            if organizational_domain(dest) != org:
                external[dest] = tag
    if not external or domain.endswith(".invalid"):
        return  # RFC 6761 6.4: no authorisation to ask about for a --record without a domain
    names = {dest: f"{domain}._report._dmarc.{dest}" for dest in external}
    lookups = await asyncio.gather(*(dns.query(n, "TXT") for n in names.values()))
    for (dest, name), lookup in zip(names.items(), lookups, strict=True):
        if lookup.failed:
            result.failed_lookup(lookup, f"report authorisation for {dest}")
        elif not txt_records(lookup, "v=DMARC1"):
            result.add("dmarc.rua-unauthorized", Status.WARN,
                       f"{external[dest]} sends reports to {dest}, which does not authorise it"
                       f" ({name} has no v=DMARC1 record); reports are dropped",
                       subject=name, reference="RFC 7489 7.1",
                       fix=f'{name}. IN TXT "v=DMARC1"')


def _valid_pairs(text: str) -> list[tuple[str, str]]:
    """The record's tags with every invalid one repaired or dropped, so that a fix built on
    them is always a valid record (RFC 7489 6.3): pct out of range -> 100, a bad policy ->
    none, bad alignment, ri, fo, unknown and repeated tags dropped, v=DMARC1 first."""
    pairs, _ = parse_tags(text)
    out: dict[str, str] = {"v": "DMARC1"}
    for tag, value in pairs:
        tag = tag.lower()
        if tag in out or tag not in KNOWN_TAGS:
            continue
        if tag == "pct" and not (value.isdecimal() and 0 <= int(value) <= 100):
            value = "100"
        elif tag in ("p", "sp", "np") and value.lower() not in POLICIES:
            value = "none"
        elif (tag in ("adkim", "aspf") and value.lower() not in ("r", "s")) or (
                tag == "ri" and not value.isdecimal()) or (
                tag == "fo" and any(p not in ("0", "1", "d", "s") for p in value.split(":"))):
            continue
        out[tag] = value
    out.setdefault("p", "none")
    return list(out.items())


def _with_tag(text: str, tag: str, value: str) -> str:
    pairs = _valid_pairs(text)
    out, seen = [], False
    for t, v in pairs:
        if t.lower() == tag:
            v, seen = value, True
        out.append(f"{t}={v}")
    if not seen:
        out.insert(2 if len(out) > 1 else len(out), f"{tag}={value}")
    return "; ".join(out)
