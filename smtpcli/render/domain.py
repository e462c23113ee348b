"""check-domain's text rendering: findings grouped by record family, with the records shown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smtpcli.checks.domain import DomainResult
    from smtpcli.render.style import Painter

FAMILY_TITLES = {"mx": "MX", "spf": "SPF", "dmarc": "DMARC", "dkim": "DKIM", "mta-sts": "MTA-STS",
                 "tlsrpt": "TLS-RPT", "bimi": "BIMI", "dnssec": "DNSSEC", "dnsbl": "Blocklists",
                 "dns": "DNS", "domain": "Domain", "record": "Record"}


def _record_lines(family: str, facts: dict[str, Any]) -> list[str]:
    lines = []
    for rec in facts.get("records", []):
        lines.append(f"    record: {rec}")
    if family == "mx":
        for host in facts.get("hosts", []):
            rdns = ", ".join(f"{r['address']} -> {','.join(r['ptr']) or 'no PTR'}"
                             for r in host.get("rdns", []))
            lines.append(f"    {host['host']}: {', '.join(host['addresses']) or 'no address'}"
                         + (f"  [{rdns}]" if rdns else ""))
    if family == "spf" and facts.get("tree_text"):
        lines.append("    lookup tree:")
        lines.extend(f"      {t}" for t in facts["tree_text"])
    if family == "dkim":
        for key in facts.get("keys", []):
            lines.append(f"    {key['name']}: {key['records'][0][:100]}")
    if family == "mta-sts" and "policy_text" in facts:
        lines.append("    policy:")
        lines.extend(f"      {ln}" for ln in facts["policy_text"].strip().splitlines()[:20])
    return lines


def render_domain(result: DomainResult, paint: Painter, *, show_ok: bool = True) -> str:
    """Findings grouped by record family, with the records shown."""
    from smtpcli.render.text import badge, finding_lines
    from smtpcli.results import Status

    report = result.report
    out = [paint(result.domain, "bold") + paint(
        f"  ({report.facts.get('dns_questions', 0)} DNS questions)", "dim")]
    for fam in result.families:
        shown = [f for f in fam.findings if show_ok or f.status is not Status.OK]
        if not shown and (not show_ok or not fam.findings):
            continue
        worst = Status.worst([f.status for f in fam.findings])
        out.append(f"{badge(worst, paint)} {paint(FAMILY_TITLES.get(fam.family, fam.family), 'bold')}")
        out.extend(_record_lines(fam.family, fam.facts))
        for finding in shown:
            out.extend(finding_lines(finding, paint, indent="    "))
    out.append(f"{badge(report.status, paint)} {report.summary}")
    return "\n".join(out) + "\n"
