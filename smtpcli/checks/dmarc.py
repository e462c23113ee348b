"""DMARC (RFC 7489): one record at _dmarc.<domain> or the organisational domain, syntax,
policy strength, pct, rua/ruf URIs and the external-destination authorisation (7.1)."""

from __future__ import annotations

import asyncio

from smtpcli.checks.common import CheckOptions, FamilyResult, txt_records
from smtpcli.checks.dmarc_syntax import (
    POLICIES,
    DmarcLint,
    is_dmarc_record,
    lint_dmarc,
    repair,
    report_uris,
    with_tag,
)
from smtpcli.dnsq.client import DnsClient, Lookup
from smtpcli.inspection.dmarc import organizational_domain  # RFC 7489 3.2, shared with inspect
from smtpcli.results import Status


def _dmarc_texts(lookup: Lookup) -> list[str]:
    """The TXT strings that are DMARC records (RFC 7489 6.6.3: those starting with v=DMARC1)."""
    return [t for t in lookup.texts if is_dmarc_record(t)]


def parse_dmarc(text: str) -> tuple[dict[str, str], list[str]]:
    """Tags and fail-level syntax problems of a DMARC record (RFC 7489 6.3, 6.4)."""
    lint = lint_dmarc(text)
    return lint.tags, [p.problem for p in lint.problems if p.level == "fail"]


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
        records = _dmarc_texts(own)
        if not records and org_lookup is not None:
            if org_lookup.failed:
                result.failed_lookup(org_lookup, "DMARC record of the organisational domain")
                return result
            records = _dmarc_texts(org_lookup)
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
    lint = lint_dmarc(text)
    tags = lint.tags
    result.facts["tags"] = tags
    _report_syntax(text, lint, result)
    policy = tags.get("p", "none").lower()
    sub = tags.get("sp", policy).lower()
    result.facts["policy"] = policy
    fixed = with_tag(text, "p", "quarantine")
    if policy == "none":
        result.add("dmarc.policy-none", Status.WARN,
                   "p=none: receivers only monitor, spoofed mail is still delivered",
                   reference="RFC 7489 6.3", fix=fixed)
    if policy in POLICIES and sub in POLICIES and POLICIES.index(sub) < POLICIES.index(policy):
        result.add("dmarc.subdomain-weaker", Status.WARN,
                   f"sp={sub} is weaker than p={policy}: subdomains can be spoofed",
                   reference="RFC 7489 6.3", fix=with_tag(text, "sp", policy))
    pct = tags.get("pct", "100")
    if pct.isdecimal() and int(pct) < 100:
        result.add("dmarc.pct-partial", Status.WARN,
                   f"pct={pct}: the policy applies to only {pct}% of failing mail",
                   reference="RFC 7489 6.3", fix=with_tag(text, "pct", "100"))
    if "rua" not in tags:
        result.add("dmarc.no-rua", Status.INFO, "no rua=: you receive no aggregate reports",
                   reference="RFC 7489 7.2", fix=with_tag(text, "rua", f"mailto:dmarc@{domain}"))
    policy_domain = where.removeprefix("_dmarc.")
    await _check_uris(dns, policy_domain, tags, result, text)
    if not any(f.status.rank >= Status.WARN.rank for f in result.findings):
        result.add("dmarc.ok", Status.OK, f"DMARC p={policy} published at {where}")
    return result


async def _check_uris(dns: DnsClient, domain: str, tags: dict[str, str],
                      result: FamilyResult, text: str | None = None) -> None:
    external: dict[str, str] = {}
    org = organizational_domain(domain)
    for tag in ("rua", "ruf"):
        if tag not in tags:
            continue
        uris, invalid = report_uris(tags[tag])
        for uri in invalid:
            result.add("dmarc.rua-invalid", Status.FAIL,
                       f"{tag}={uri} is not a valid DMARC report URI", reference="RFC 7489 6.2",
                       fix=repair(text) if text is not None else None)
        for dest in (u.address.rpartition("@")[2].rstrip(".").lower() for u in uris
                     if u.scheme == "mailto"):
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


def _report_syntax(text: str, lint: DmarcLint, result: FamilyResult) -> None:
    """Findings for the lint: fail-level problems (a receiver ignores the tag or the record),
    unknown tags and other warnings; the fix is a record this lint finds valid."""
    fixed = repair(text, lint) if not lint.valid else None
    for problem in lint.problems:
        if problem.level == "fail" and problem.problem.startswith(f"{problem.tag}: "):
            continue  # a bad rua/ruf URI: reported per URI as dmarc.rua-invalid
        if problem.level == "fail":
            result.add("dmarc.syntax", Status.FAIL, f"DMARC record: {problem.problem}",
                       reference=problem.reference, fix=fixed,
                       data={"tag": problem.tag, "problem": problem.problem})
        elif problem.problem.startswith("unknown tag"):
            result.add("dmarc.unknown-tag", Status.WARN, f"DMARC record: {problem.problem}",
                       reference=problem.reference, fix=repair(text, lint),
                       data={"tag": problem.tag})
        else:
            result.add("dmarc.syntax-warning", Status.WARN, f"DMARC record: {problem.problem}",
                       reference=problem.reference, data={"tag": problem.tag})
