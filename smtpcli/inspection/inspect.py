"""Orchestrates the analysis of one received message into a Report."""

from __future__ import annotations

from datetime import datetime

from smtpcli.dnsq.resolver import ResolverConfig
from smtpcli.inspection.arc import verify_arc
from smtpcli.inspection.authresults import OurResults, collect, compare
from smtpcli.inspection.bulk import bulk_findings
from smtpcli.inspection.dkimverify import dkim_findings, verify_all
from smtpcli.inspection.dmarc import evaluate_dmarc
from smtpcli.inspection.lookups import TxtLookups
from smtpcli.inspection.parse import parse_message
from smtpcli.inspection.received import analyse_received
from smtpcli.inspection.spfeval import evaluate_spf
from smtpcli.results import Finding, Report, Status


def _return_path(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if "<" in text and ">" in text:
        text = text[text.index("<") + 1 : text.index(">")]
    return text.strip()


def inspect_message(
    raw: bytes,
    *,
    config: ResolverConfig | None = None,
    offline: bool = False,
    ip: str | None = None,
    sender: str | None = None,
    helo: str | None = None,
    now: datetime | None = None,
    target: str | None = None,
) -> Report:
    """Everything a received message proves about itself, as a Report (command ``inspect``)."""
    config = config or ResolverConfig()
    report = Report(command="inspect", target=target)
    msg = parse_message(raw)
    report.findings += msg.findings
    lookups = TxtLookups(config, offline=offline)

    chain = analyse_received(msg, now=now)
    report.findings += chain.findings

    dkim_results = verify_all(msg, lookups)
    report.findings += dkim_findings(dkim_results)

    arc = verify_arc(msg, lookups)
    report.findings += arc.findings

    return_path = _return_path(msg.get("return-path"))
    spf_sender = sender if sender is not None else return_path
    spf_ip = ip or chain.entering_ip
    spf_helo = helo or (chain.entering.from_host if chain.entering and not ip else None)
    spf = evaluate_spf(spf_ip, spf_sender, spf_helo, config=config, offline=offline)
    report.findings += spf.findings

    dkim_pass = [r.domain for r in dkim_results if r.result == "pass" and r.domain]
    dmarc = evaluate_dmarc(msg.from_domain, dkim_pass_domains=dkim_pass,
                           spf_result=None if offline else spf.result,
                           spf_domain=spf.domain, lookups=lookups)
    report.findings += dmarc.findings

    found = collect(msg)
    ours = OurResults(
        dkim=[(r.domain, r.b_prefix, r.result) for r in dkim_results],
        spf=spf.result, dmarc=dmarc.state if dmarc.state in ("pass", "fail") else None,
        arc=arc.result if arc.result in ("pass", "fail", "none") else None,
    )
    report.findings += compare(found, ours)
    report.findings += bulk_findings(msg, dkim_results,
                                     spf.domain if spf.result == "pass" else None)

    if offline:
        report.findings.append(Finding(
            "inspect.offline", Status.INFO,
            "--offline: DKIM, ARC, SPF and DMARC results are unknown (no lookups made)",
            data={"unknown": ["dkim", "arc", "spf", "dmarc", "authres comparison"]}))

    report.facts = {
        "message": {
            "from": msg.get("from"), "from_domain": msg.from_domain, "to": msg.get("to"),
            "subject": msg.get("subject"), "date": msg.get("date"),
            "message_id": msg.get("message-id"), "return_path": return_path,
            "size": len(raw), "line_endings": msg.line_endings, "headers": len(msg.headers),
        },
        "received": chain.to_dict(),
        "dkim": [r.to_dict() for r in dkim_results],
        "arc": arc.to_dict(),
        "spf": spf.to_dict(),
        "dmarc": dmarc.to_dict(),
        "authentication_results": [a.to_dict() for a in found],
        "offline": offline,
        "lookups": [lk.to_dict() for lk in lookups.done.values()],
    }
    passing = sum(1 for r in dkim_results if r.result == "pass")
    report.summary = (
        f"dkim {passing}/{len(dkim_results)} pass, arc {arc.result}, spf {spf.result}, "
        f"dmarc {dmarc.state}; {len(chain.hops)} hop(s)"
    )
    return report
