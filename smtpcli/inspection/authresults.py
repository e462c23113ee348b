"""Authentication-Results (RFC 8601) and ARC-Authentication-Results (RFC 8617 4.1.1).

The receiver's own verdicts are parsed and compared with ours; a disagreement points at a
changed message, a rotated key, or a receiver that evaluated something else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from smtpcli.inspection.parse import ParsedMessage
from smtpcli.inspection.received import _strip_comments
from smtpcli.results import Finding, Status

DEFINITE = {"pass", "fail", "softfail", "neutral", "none", "permerror", "temperror"}


@dataclass
class ResInfo:
    method: str
    result: str
    props: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "result": self.result, "properties": self.props}


@dataclass
class AuthResults:
    header: str  # Authentication-Results | ARC-Authentication-Results
    authserv_id: str
    instance: int | None
    results: list[ResInfo]

    def to_dict(self) -> dict[str, Any]:
        return {"header": self.header, "authserv_id": self.authserv_id,
                "instance": self.instance, "results": [r.to_dict() for r in self.results]}


def _split(text: str) -> list[str]:
    """Split on ';' outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts]


_RESULT = re.compile(r"^([A-Za-z0-9_.-]+)(?:/\d+)?\s*=\s*([A-Za-z0-9_-]+)")
_PROP = re.compile(r'([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)?)\s*=\s*("[^"]*"|[^\s;]+)')


def parse_auth_results(value: str, header: str = "Authentication-Results") -> AuthResults:
    """Parse one value; whatever does not parse is skipped, never raised."""
    plain, _ = _strip_comments(value)
    parts = _split(plain)
    instance = None
    if header.lower().startswith("arc-") and parts and parts[0].lower().startswith("i="):
        try:
            instance = int(parts[0][2:].strip())
        except ValueError:
            instance = None
        parts = parts[1:]
    authserv = parts[0].split()[0] if parts and parts[0].split() else ""
    results: list[ResInfo] = []
    for part in parts[1:]:
        m = _RESULT.match(part)
        if not m:
            continue
        props = {k.lower(): v.strip('"') for k, v in _PROP.findall(part[m.end():])}
        results.append(ResInfo(m.group(1).lower(), m.group(2).lower(), props))
    return AuthResults(header, authserv, instance, results)


def collect(msg: ParsedMessage) -> list[AuthResults]:
    out = [parse_auth_results(v) for v in msg.get_all("authentication-results")]
    out += [parse_auth_results(v, "ARC-Authentication-Results")
            for v in msg.get_all("arc-authentication-results")]
    return out


@dataclass
class OurResults:
    """What we found, in A-R terms, for comparison."""

    dkim: list[tuple[str | None, str | None, str]]  # (d, b prefix, result)
    spf: str | None
    dmarc: str | None
    arc: str | None


def _theirs_vs_ours(info: ResInfo, ours: OurResults) -> tuple[str | None, str]:
    """Our result for the same check (None when we have no definite one) and a label."""
    if info.method == "dkim":
        d = (info.props.get("header.d") or info.props.get("header.i", "").split("@")[-1]).lower()
        b = info.props.get("header.b")
        cands = [r for dd, bb, r in ours.dkim
                 if (not d or dd == d) and (not b or (bb or "").startswith(b[:8]))]
        cands = [r for r in cands if r in DEFINITE]
        if not cands:
            return None, f"dkim d={d or '?'}"
        return ("pass" if "pass" in cands else cands[0]), f"dkim d={d or '?'}"
    if info.method == "spf":
        return (ours.spf if ours.spf in DEFINITE else None), "spf"
    if info.method == "dmarc":
        return (ours.dmarc if ours.dmarc in DEFINITE else None), "dmarc"
    if info.method == "arc":
        return (ours.arc if ours.arc in DEFINITE else None), "arc"
    return None, info.method


def compare(found: list[AuthResults], ours: OurResults) -> list[Finding]:
    """Flag where the message's own verdicts differ from ours (pass vs not pass)."""
    out: list[Finding] = []
    if not found:
        out.append(Finding("authres.none", Status.INFO,
                           "no Authentication-Results header fields to compare with"))
        return out
    agreed = 0
    for ar in found:
        for info in ar.results:
            mine, label = _theirs_vs_ours(info, ours)
            if mine is None:
                continue
            if (info.result == "pass") == (mine == "pass"):
                agreed += 1
                continue
            where = ar.authserv_id or "?"
            if ar.header.lower().startswith("arc-"):
                out.append(Finding(
                    "authres.arc-differs", Status.INFO,
                    f"{label}: ARC hop i={ar.instance} ({where}) saw {info.result}, we get {mine}",
                    detail="Expected when an intermediary (a list, a forwarder) changed the "
                    "message after that hop evaluated it; ARC carries the earlier verdict.",
                    subject=where, reference="RFC 8617 4.1.1"))
            else:
                out.append(Finding(
                    "authres.disagreement", Status.WARN,
                    f"{label}: {where} recorded {info.result}, we get {mine}",
                    detail="The message changed after it was received, a key was rotated since, "
                    "or the header was added by someone else (RFC 8601 5 says receivers must "
                    "remove A-R fields claiming their own authserv-id).",
                    subject=where, reference="RFC 8601 2.7",
                    data={"method": info.method, "theirs": info.result, "ours": mine}))
    if agreed and not any(f.id == "authres.disagreement" for f in out):
        out.append(Finding("authres.agree", Status.OK,
                           f"{agreed} recorded verdict(s) agree with ours"))
    return out
