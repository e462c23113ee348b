"""Run every record family of a domain concurrently and assemble one Report.

Families share the run's DnsClient, so a question two families need (the MX set, the _dmarc
TXT) is asked once, and each family starts its dependent questions as soon as its parent
answers.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from smtpcli.checks.common import CheckOptions, FamilyResult
from smtpcli.dnsq.client import DnsClient, DomainView, LookupState
from smtpcli.results import Report, Status, exit_code_for_status, problem_counts

FamilyCheck = Callable[[DnsClient, str, CheckOptions], Awaitable[FamilyResult]]
FAMILIES = ("mx", "spf", "dmarc", "dkim", "mta-sts", "tlsrpt", "bimi", "dnssec", "dnsbl", "dns")
_RECORD_PREFIXES = {"v=spf1": "spf", "v=dmarc1": "dmarc", "v=dkim1": "dkim",
                    "v=tlsrptv1": "tlsrpt", "v=bimi1": "bimi"}


def _checks() -> dict[str, FamilyCheck]:
    from smtpcli.checks.bimi import check_bimi
    from smtpcli.checks.dkim import check_dkim
    from smtpcli.checks.dmarc import check_dmarc
    from smtpcli.checks.dnsbl import check_dnsbl
    from smtpcli.checks.dnssec import check_dnssec
    from smtpcli.checks.mtasts import check_mtasts
    from smtpcli.checks.mx import check_mx
    from smtpcli.checks.spf import check_spf
    from smtpcli.checks.tlsrpt import check_tlsrpt

    return {"mx": check_mx, "spf": check_spf, "dmarc": check_dmarc, "dkim": check_dkim,
            "mta-sts": check_mtasts, "tlsrpt": check_tlsrpt, "bimi": check_bimi,
            "dnssec": check_dnssec, "dnsbl": check_dnsbl, "dns": check_conflicts}


async def check_conflicts(dns: DnsClient, domain: str, opts: CheckOptions) -> FamilyResult:
    """TXT and CNAME at one name (RFC 1034 3.6.2: a CNAME owner has no other data)."""
    result = FamilyResult("dns")
    names = [domain, f"_dmarc.{domain}", f"_mta-sts.{domain}", f"_smtp._tls.{domain}"]
    lookups = await asyncio.gather(*(dns.query_many([(n, "CNAME"), (n, "TXT")]) for n in names))
    for name, (cname, txt) in zip(names, lookups, strict=True):
        if cname.ok and txt.ok and (txt.canonical_name or "").lower() == name.lower():
            result.add("dns.txt-cname-conflict", Status.FAIL,
                       f"{name} has both a CNAME ({cname.texts[0]}) and TXT records; "
                       "resolvers return either, unpredictably", subject=name,
                       reference="RFC 1034 3.6.2 / RFC 2181 10.1",
                       fix="keep only the CNAME or only the TXT records")
    return result


@dataclass
class DomainResult:
    """A domain's families in display order, and the Report built from them."""

    domain: str
    families: list[FamilyResult] = field(default_factory=list)
    report: Report = field(default_factory=lambda: Report("check-domain"))


def _assemble(domain: str, families: list[FamilyResult], questions: int) -> DomainResult:
    report = Report("check-domain", target=domain)
    seen: set[tuple[str, str | None, str]] = set()
    for fam in families:
        unique = []
        for f in fam.findings:
            key = (f.id, f.subject, f.summary)
            if key in seen:  # e.g. the same failed lookup reached from two families
                continue
            seen.add(key)
            unique.append(f)
        fam.findings = unique
        report.findings.extend(unique)
    report.facts = {"domain": domain, "families": {f.family: f.facts for f in families if f.facts},
                    "dns_questions": questions}
    parts = problem_counts([f.status for f in report.findings])
    report.summary = f"{domain}: " + (", ".join(parts) if parts else "no problems found")
    return DomainResult(domain, families, report)


def _family_error(family: str, exc: BaseException) -> FamilyResult:
    result = FamilyResult(family)
    result.add(f"{family}.check-failed", Status.ERROR,
               f"the {family} check could not finish: {type(exc).__name__}: {exc}")
    return result


FOLD_FAILURES = 5


def _all_lookups_failed(domain: str, results: list[FamilyResult]) -> FamilyResult | None:
    """One finding instead of a screenful when no DNS question got any answer (an unreachable
    or refusing nameserver): still an error, never "missing", with every failure in ``data``."""
    findings = [f for fam in results for f in fam.findings]
    if len(findings) < FOLD_FAILURES or any(f.id != "dns.lookup-failed" for f in findings):
        return None  # a few failures read best one by one
    reasons = Counter(str(f.data.get("reason")) for f in findings)
    reason, _ = reasons.most_common(1)[0]
    names = sorted({str(f.data.get("name")) for f in findings})
    result = FamilyResult("dns")
    result.add(
        "dns.lookup-failed", Status.ERROR,
        f"every DNS lookup for {domain} failed ({len(names)} names): {reason}",
        subject=domain,
        fix="check that the nameserver (--nameserver, or the system's) is reachable and "
            "answers for this domain; raise --timeout for a slow one",
        data={"failures": [f.data for f in findings], "names": names},
    )
    return result


async def check_domain(
    domain: str, dns: DnsClient, opts: CheckOptions, families: tuple[str, ...] = FAMILIES,
) -> DomainResult:
    """Check one domain; never raises for DNS trouble (it becomes findings)."""
    domain = domain.strip().rstrip(".").lower()
    checks = _checks()
    wanted = [f for f in FAMILIES if f in families]
    # The existence question is shared with the MX check (and DNSSEC) through the cache.
    exists = asyncio.ensure_future(dns.query(domain, "MX"))
    outcomes = await asyncio.gather(*(checks[f](dns, domain, opts) for f in wanted),
                                    return_exceptions=True)
    results: list[FamilyResult] = []
    for family, outcome in zip(wanted, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            if isinstance(outcome, (asyncio.CancelledError, KeyboardInterrupt)):
                raise outcome
            outcome = _family_error(family, outcome)
        results.append(outcome)
    mx = await exists
    nothing_answered = _all_lookups_failed(domain, results)
    if nothing_answered is not None:
        return _assemble(domain, [nothing_answered], dns.questions)
    if mx.state is LookupState.NXDOMAIN:
        # RFC 8020: nothing exists below an NXDOMAIN name; the family findings would only
        # repeat "missing", so report the one fact that matters.
        gone = FamilyResult("domain")
        gone.add("domain.nxdomain", Status.FAIL, f"{domain} does not exist (NXDOMAIN)",
                 reference="RFC 8020", detail="Check the spelling and the delegation.")
        return _assemble(domain, [gone, *_evaluations_only(results)], dns.questions)
    return _assemble(domain, results, dns.questions)


def _evaluations_only(results: list[FamilyResult]) -> list[FamilyResult]:
    """The SPF results of --ip (RFC 7208 2.6: a sender at a missing domain still gets one)."""
    out = []
    for fam in results:
        if fam.family == "spf" and "evaluations" in fam.facts:
            keep = FamilyResult("spf", [f for f in fam.findings if f.id == "spf.result"])
            keep.facts = {k: fam.facts[k] for k in ("evaluations", "evaluation")}
            out.append(keep)
    return out


async def check_domain_within(domain: str, dns: DnsClient, opts: CheckOptions,
                              families: tuple[str, ...], deadline: float) -> DomainResult:
    """``check_domain`` bounded by ``deadline`` seconds: past it, one ``check.timeout`` error
    finding instead of a hang (a domain may chain many dependent lookups)."""
    dns = DomainView(dns)  # this domain's own question count; the cache stays shared
    try:
        return await asyncio.wait_for(check_domain(domain, dns, opts, families), deadline)
    except TimeoutError:
        fam = FamilyResult("domain")
        fam.add("check.timeout", Status.ERROR,
                f"the checks of {domain} did not finish within {deadline:.0f} s")
        return _assemble(domain, [fam], dns.questions)


async def check_domains(domains: Iterable[str], make_client: Callable[[], DnsClient],
                        opts: CheckOptions, families: tuple[str, ...], concurrency: int,
                        deadline: float, on_done: Callable[[DomainResult], None]) -> None:
    """Check many domains, ``concurrency`` at once, handing each result to ``on_done`` as it
    finishes and keeping none: memory stays flat however many domains there are (a batch of
    100,000 or a million is written out as it goes, issue 17). ``concurrency`` workers take
    the next name from ``domains`` in turn, so no task exists for a name not yet started."""
    names = iter(domains)

    async def worker() -> None:
        for domain in names:  # shared: each worker takes the next name
            on_done(await check_domain_within(domain, make_client(), opts, families, deadline))

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))


#: Stands in for the domain of a --record given without one (RFC 6761 6.4: never resolves).
NO_DOMAIN = "record.invalid"


def _scrub(value: Any) -> Any:
    """Facts without the stand-in name: the name itself becomes None (as do names made from
    it, such as _dmarc.record.invalid); text mentioning it says "(the record)"."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str) and NO_DOMAIN in value:
        is_name = " " not in value
        return None if is_name else value.replace(NO_DOMAIN, "(the record)")
    return value


def _without_domain(result: DomainResult) -> DomainResult:
    """A --record lint without a domain: no finding that needs one (report authorisation, say),
    and no invented name in what is shown."""
    kept = []
    for f in result.report.findings:
        if f.subject and f.subject != NO_DOMAIN and NO_DOMAIN in f.subject:
            continue  # about a name derived from the domain: meaningless without it
        if f.subject == NO_DOMAIN:
            f.subject = None
        f.summary = f.summary.replace(f" of {NO_DOMAIN}", "").replace(NO_DOMAIN, "the record")
        if f.detail:
            f.detail = f.detail.replace(NO_DOMAIN, "the record")
        if f.fix and NO_DOMAIN in f.fix:
            f.fix = None
        kept.append(f)
    result.report.findings = kept
    for fam in result.families:
        fam.findings = [f for f in fam.findings if f in kept]
    for fam in result.families:
        fam.facts.update(_scrub(fam.facts))
    result.domain = "record (no domain given)"
    result.report.target = None
    result.report.facts["domain"] = None
    parts = problem_counts([f.status for f in kept])
    result.report.summary = "record: " + (", ".join(parts) if parts else "no problems found")
    return result


async def check_record(text: str, domain: str | None, dns: DnsClient,
                       opts: CheckOptions) -> DomainResult:
    """Lint one record text before it is published (`--record`), as if at `domain`; without
    one, only what the text alone can tell."""
    given, domain = domain, domain or NO_DOMAIN
    from smtpcli.checks.bimi import check_bimi
    from smtpcli.checks.dkim import evaluate_dkim_key_record
    from smtpcli.checks.dmarc import check_dmarc
    from smtpcli.checks.dmarc_syntax import is_dmarc_record
    from smtpcli.checks.spf import check_spf
    from smtpcli.checks.tlsrpt import check_tlsrpt

    low = text.strip().lower()
    kind = next((fam for prefix, fam in _RECORD_PREFIXES.items()
                 if low == prefix or low.startswith((prefix + " ", prefix + ";"))), None)
    if kind is None and is_dmarc_record(text):
        kind = "dmarc"  # RFC 7489 6.4 allows spaces around '=' in v=DMARC1
    if kind is None and "p=" in low and "k=" in low:
        kind = "dkim"
    if kind == "spf":
        fam = await check_spf(dns, domain, opts, record=text)
    elif kind == "dmarc":
        fam = await check_dmarc(dns, domain, opts, record=text)
    elif kind == "tlsrpt":
        fam = await check_tlsrpt(dns, domain, opts, record=text)
    elif kind == "bimi":
        fam = await check_bimi(dns, domain, opts, record=text)
    elif kind == "dkim":
        fam = FamilyResult("dkim", evaluate_dkim_key_record(text), {"records": [text]})
    else:
        fam = FamilyResult("record")
        fam.add("record.unknown", Status.FAIL,
                "not a record this command knows (v=spf1, v=DMARC1, v=DKIM1, v=TLSRPTv1, v=BIMI1)")
    result = _assemble(domain, [fam], dns.questions)
    result.report.facts["record"] = text
    return result if given else _without_domain(result)


def worst_exit(reports: list[Report], strict: bool) -> int:
    """Exit code for many domains: the highest of their own, so 3 (could not complete)
    outranks 1 (failed, or warned with --strict)."""
    return max((int(exit_code_for_status(r, strict=strict)) for r in reports), default=0)
