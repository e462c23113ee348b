"""SMTP TLS Reporting (RFC 8460 3): one v=TLSRPTv1 record at _smtp._tls.<domain>."""

from __future__ import annotations

from smtpcli.checks.common import CheckOptions, FamilyResult, parse_tags, versioned_txt
from smtpcli.dnsq.client import DnsClient
from smtpcli.results import Status


def parse_tlsrpt(text: str) -> tuple[dict[str, str], list[str]]:
    """Tags and problems (RFC 8460 3: v=TLSRPTv1 first, rua= with mailto: or https: URIs)."""
    pairs, bad = parse_tags(text)
    problems = [f"not tag=value: {b!r}" for b in bad]
    tags = {t.lower(): v for t, v in pairs}
    if not pairs or pairs[0] != ("v", "TLSRPTv1"):
        problems.append("v=TLSRPTv1 must come first")
    if "rua" not in tags:
        problems.append("rua= is required")
    else:
        for uri in filter(None, tags["rua"].split(",")):
            low = uri.lower()
            if low.startswith("mailto:"):
                if "@" not in uri[7:]:
                    problems.append(f"rua {uri} is not a mail address")
            elif not low.startswith("https://"):
                problems.append(f"rua {uri} is neither mailto: nor https:")
    return tags, problems


async def check_tlsrpt(
    dns: DnsClient, domain: str, opts: CheckOptions, record: str | None = None
) -> FamilyResult:
    result = FamilyResult("tlsrpt")
    name = f"_smtp._tls.{domain}"
    if record is None:
        found = await versioned_txt(dns, result, name, "v=TLSRPTv1", "TLS-RPT record")
        if found is None:
            return result
        records = found
        if not records:
            result.add("tlsrpt.missing", Status.INFO,
                       f"no TLS-RPT record at {name}: no reports about failed TLS delivery",
                       reference="RFC 8460 3",
                       fix=f'{name}. IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@{domain}"')
            return result
    else:
        records = [record]
    result.facts.update({"name": name, "records": records})
    if len(records) > 1:
        result.add("tlsrpt.syntax", Status.FAIL,
                   f"{len(records)} TLS-RPT records at {name}: senders use none",
                   reference="RFC 8460 3")
    tags, problems = parse_tlsrpt(records[0])
    result.facts["tags"] = tags
    if problems:
        result.add("tlsrpt.syntax", Status.FAIL, "TLS-RPT record: " + "; ".join(problems),
                   reference="RFC 8460 3")
    else:
        result.add("tlsrpt.ok", Status.OK, f"TLS-RPT reports go to {tags['rua']}")
    return result
