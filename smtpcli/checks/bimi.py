"""BIMI (draft-brand-indicators-for-message-identification): the default._bimi record and its
DMARC prerequisite (an enforced policy: quarantine at pct=100, or reject)."""

from __future__ import annotations

from smtpcli.checks.common import (
    CheckOptions,
    FamilyResult,
    parse_tags,
    txt_records,
    versioned_txt,
)
from smtpcli.checks.dmarc import find_record, parse_dmarc
from smtpcli.dnsq.client import DnsClient
from smtpcli.results import Status

REF = "draft-brand-indicators-for-message-identification 4"


def parse_bimi(text: str) -> tuple[dict[str, str], list[str]]:
    pairs, bad = parse_tags(text)
    problems = [f"not tag=value: {b!r}" for b in bad]
    tags = {t.lower(): v for t, v in pairs}
    if not pairs or pairs[0] != ("v", "BIMI1"):
        problems.append("v=BIMI1 must come first")
    if "l" not in tags:
        problems.append("l= is required (may be empty to decline)")
    for tag in ("l", "a"):
        value = tags.get(tag, "")
        if value and not value.lower().startswith("https://"):
            problems.append(f"{tag}= must be an https:// URL")
    if tags.get("l") and not tags["l"].lower().split("?")[0].endswith(".svg"):
        problems.append("l= should point at an SVG Tiny PS file (.svg)")
    return tags, problems


async def check_bimi(
    dns: DnsClient, domain: str, opts: CheckOptions, record: str | None = None
) -> FamilyResult:
    result = FamilyResult("bimi")
    name = f"default._bimi.{domain}"
    if record is None:
        found = await versioned_txt(dns, result, name, "v=BIMI1", "BIMI record")
        if found is None:
            return result
        records = found
        if not records:
            result.add("bimi.none", Status.INFO, f"no BIMI record at {name}")
            return result
    else:
        records = [record]
    result.facts.update({"name": name, "records": records})
    tags, problems = parse_bimi(records[0])
    if len(records) > 1:
        problems.append(f"{len(records)} BIMI records")
    if problems:
        result.add("bimi.syntax", Status.FAIL, "BIMI record: " + "; ".join(problems),
                   reference=REF)
    if record is not None:
        return result
    own, org_lookup, _ = await find_record(dns, domain)
    dmarc_lookup = own if own.ok and txt_records(own, "v=DMARC1") else org_lookup or own
    if dmarc_lookup.failed:
        result.failed_lookup(dmarc_lookup, "DMARC prerequisite of BIMI")
        return result
    dmarc = txt_records(dmarc_lookup, "v=DMARC1")
    dtags = parse_dmarc(dmarc[0])[0] if len(dmarc) == 1 else {}
    policy = dtags.get("p", "none").lower()
    sub = dtags.get("sp", policy).lower()
    pct = dtags.get("pct", "100")
    enforced = policy in ("quarantine", "reject") and sub != "none" and pct == "100"
    if not enforced:
        result.add("bimi.dmarc-not-enforced", Status.FAIL,
                   "BIMI needs DMARC at enforcement (p=quarantine or reject, pct=100, sp not "
                   f"none); found {'no usable DMARC record' if not dtags else f'p={policy}'}",
                   reference=REF)
    elif not problems:
        result.add("bimi.ok", Status.OK, "BIMI record published with an enforced DMARC policy")
    return result
