"""ARC chain validation (RFC 8617) with dkimpy's ``arc_verify`` through the configured resolver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smtpcli.inspection.lookups import TxtLookups
from smtpcli.inspection.parse import ParsedMessage
from smtpcli.results import Finding, Status

REF = "RFC 8617"


@dataclass
class ArcOutcome:
    result: str  # none | pass | fail | unknown | temperror
    reason: str = ""
    instances: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result, "reason": self.reason, "instances": self.instances}


def _has_arc(msg: ParsedMessage) -> bool:
    return any(n.lower().startswith("arc-") for n, _ in msg.headers)


def verify_arc(msg: ParsedMessage, lookups: TxtLookups) -> ArcOutcome:
    """Validate the ARC chain; lookups that failed make the result temperror, not fail."""
    import dkim

    if not _has_arc(msg):
        out = ArcOutcome("none", "no ARC header fields")
        out.findings.append(Finding("arc.none", Status.INFO, "the message has no ARC chain"))
        return out
    if lookups.offline:
        out = ArcOutcome("unknown", "--offline")
        out.findings.append(Finding("arc.unknown", Status.INFO,
                                    "ARC chain not verified (--offline)"))
        return out
    before = set(lookups.done)
    malformed_before = len(lookups.malformed)
    try:
        cv, results, reason = dkim.arc_verify(msg.raw, dnsfunc=lookups.dkim_dnsfunc)
    except Exception as exc:  # hostile headers: a failed chain, never a crash
        cv, results, reason = b"fail", [], f"{type(exc).__name__}: {exc}"
    cv_text = cv.decode() if isinstance(cv, bytes) else str(cv or "fail")
    instances = [
        {
            "instance": r.get("instance"), "ams_domain": _s(r.get("ams-domain")),
            "ams_selector": _s(r.get("ams-selector")), "ams_valid": bool(r.get("ams-valid")),
            "as_domain": _s(r.get("as-domain")), "as_selector": _s(r.get("as-selector")),
            "as_valid": bool(r.get("as-valid")), "cv": _s(r.get("cv")),
        }
        for r in results
    ]
    failed = [lk for name, lk in lookups.done.items() if name not in before and lk.failed]
    out = ArcOutcome(cv_text if cv_text in ("pass", "fail", "none") else "fail", reason, instances)
    count = len(instances)
    if out.result == "pass":
        out.findings.append(Finding("arc.pass", Status.OK,
                                    f"ARC chain of {count} set(s) validates",
                                    data={"instances": instances}, reference=f"{REF} 5.2"))
    elif failed:
        out.result = "temperror"
        out.findings.append(Finding(
            "arc.lookup-failed", Status.ERROR, "ARC chain not verified: a key lookup failed",
            detail="; ".join(f"{lk.name}: {lk.error}" for lk in failed), reference=f"{REF} 5.2"))
    else:
        # A key name that is no DNS name (an empty s=, say) is the seal's fault: a fail.
        malformed = "; ".join(dict.fromkeys(lookups.malformed[malformed_before:])) or None
        out.findings.append(Finding("arc.fail", Status.FAIL, f"ARC chain fails: {reason}",
                                    detail=malformed, data={"instances": instances},
                                    reference=f"{REF} 5.2"))
    return out


def _s(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
