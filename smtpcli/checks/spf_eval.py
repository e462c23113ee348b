"""SPF evaluation (RFC 7208 4, check_host()) of each identity a receiver checks: the MAIL FROM
identity (2.4; a null sender means postmaster@HELO) and the HELO identity (2.3).

Every identity gets one of the seven results of RFC 7208 2.6, always: a malformed or missing
domain is ``none`` (4.3), a failed lookup is ``temperror`` (2.6.6), never "no record". pyspf
evaluates; its DNS goes through the run's DnsClient (smtpcli.dnsq.pyspf_bridge).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from smtpcli.checks.common import CheckOptions, FamilyResult
from smtpcli.dnsq.client import DnsClient
from smtpcli.results import Status

RESULTS = ("none", "neutral", "pass", "fail", "softfail", "temperror", "permerror")
_STATUS = {"pass": Status.OK, "fail": Status.FAIL, "softfail": Status.WARN,
           "neutral": Status.WARN, "none": Status.WARN, "temperror": Status.ERROR,
           "permerror": Status.FAIL}
_MEANING = {"pass": "the IP is authorised", "fail": "the IP is not authorised",
            "softfail": "the IP is probably not authorised", "neutral": "no assertion",
            "none": "no SPF record or no checkable domain",
            "temperror": "a DNS lookup failed; retry later",
            "permerror": "the record cannot be interpreted"}


@dataclass(frozen=True)
class Identity:
    """One check_host() call: `kind` is ``mailfrom`` or ``helo``."""

    kind: str
    sender: str
    helo: str


def null_sender(sender: str) -> bool:
    return sender.strip().strip("<>").strip() == ""


def identities(domain: str, opts: CheckOptions) -> list[Identity]:
    """The identities to evaluate for ``--ip`` with ``--sender`` and/or ``--helo``; with
    neither, MAIL FROM postmaster@DOMAIN (the domain's own mail)."""
    out = []
    helo = opts.helo
    if opts.sender is not None:
        sender = opts.sender.strip().strip("<>").strip()
        out.append(Identity("mailfrom", sender, helo or domain))
    if helo:
        out.append(Identity("helo", f"postmaster@{helo}", helo))
    if not out:
        out.append(Identity("mailfrom", f"postmaster@{domain}", domain))
    return out


def _describe(ident: Identity) -> str:
    if ident.kind == "helo":
        return f"HELO {ident.helo}"
    return f"MAIL FROM <{ident.sender}>" + ("" if ident.sender else f" (HELO {ident.helo})")


async def evaluate_identity(dns: DnsClient, ip: str, ident: Identity,
                            timeout: float) -> dict[str, Any]:
    """check_host() for one identity: the result dict (never raises for DNS trouble)."""
    from smtpcli.dnsq.pyspf_bridge import evaluate_spf

    base = {"identity": ident.kind, "ip": ip, "sender": ident.sender, "helo": ident.helo}
    try:
        outcome = await evaluate_spf(dns, ip, ident.sender, ident.helo, timeout)
    except TimeoutError:
        outcome = {"result": "temperror", "problem": "the evaluation did not finish in time"}
    except Exception as exc:  # pyspf rejecting its input (an unusable address...)
        outcome = {"result": "permerror", "problem": f"{type(exc).__name__}: {exc}"}
    if outcome["result"] not in RESULTS:  # pyspf's "ambiguous" only exists in harsh mode
        outcome["result"] = "permerror"
    return {**base, **outcome}


async def evaluate_identities(dns: DnsClient, domain: str,
                              opts: CheckOptions) -> list[dict[str, Any]]:
    """check_host() for every identity, concurrently (a receiver checks them independently)."""
    assert opts.ip is not None
    ip = opts.ip
    return list(await asyncio.gather(*(evaluate_identity(dns, ip, ident, opts.timeout)
                                       for ident in identities(domain, opts))))


def report_evaluations(evaluations: list[dict[str, Any]], result: FamilyResult) -> None:
    """Facts ``evaluations`` (and ``evaluation``: the first) and one ``spf.result`` finding per
    identity with the matched mechanism and the exp= explanation."""
    for outcome in evaluations:
        verdict, term = outcome["result"], outcome.get("mechanism")
        ident = Identity(outcome["identity"], outcome["sender"], outcome["helo"])
        summary = f"{outcome['ip']} as {_describe(ident)}: SPF {verdict}"
        if term:
            summary += f" (matched {term})"
        explanation = outcome.get("explanation")
        result.add("spf.result", _STATUS[verdict], summary, subject=ident.kind,
                   detail=(f"explanation: {explanation}" if explanation
                           else outcome.get("problem") or _MEANING[verdict]),
                   reference="RFC 7208 2.3" if ident.kind == "helo" else "RFC 7208 2.4",
                   data={"identity": ident.kind, "result": verdict, "mechanism": term,
                         "explanation": explanation})
    result.facts["evaluations"] = evaluations
    result.facts["evaluation"] = evaluations[0]
