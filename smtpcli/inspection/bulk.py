"""Bulk-sender rules of the large mailbox providers (2024 Gmail/Yahoo requirements).

List-Unsubscribe with one-click (RFC 8058: an https URI, ``List-Unsubscribe-Post:
List-Unsubscribe=One-Click``, both fields covered by a valid DKIM signature), and a From domain
that a passing DKIM signature or SPF aligns with. Message-ID and Date are checked by parse.py.
"""

from __future__ import annotations

import re

from smtpcli.inspection.dkimverify import DkimResult
from smtpcli.inspection.dmarc import aligned
from smtpcli.inspection.parse import ParsedMessage
from smtpcli.results import Finding, Status

REF = "RFC 8058"


def bulk_findings(
    msg: ParsedMessage, dkim_results: list[DkimResult], spf_pass_domain: str | None,
) -> list[Finding]:
    out: list[Finding] = []
    unsub = msg.get("list-unsubscribe")
    if unsub is None:
        out.append(Finding(
            "bulk.no-list-unsubscribe", Status.INFO, "no List-Unsubscribe header field",
            detail="Required for bulk mail (Gmail and Yahoo, over ~5000 messages a day).",
            reference="RFC 2369 3.2, RFC 8058",
            fix="add List-Unsubscribe: <https://...>, <mailto:...> and List-Unsubscribe-Post"))
    else:
        uris = re.findall(r"<([^>]*)>", unsub)
        https = [u for u in uris if u.lower().startswith("https://")]
        post = (msg.get("list-unsubscribe-post") or "").strip()
        if not https or post.replace(" ", "").lower() != "list-unsubscribe=one-click":
            missing = []
            if not https:
                missing.append("an https URI in List-Unsubscribe")
            if not post:
                missing.append("List-Unsubscribe-Post")
            elif post.replace(" ", "").lower() != "list-unsubscribe=one-click":
                missing.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
            out.append(Finding(
                "bulk.no-one-click", Status.WARN, "List-Unsubscribe is not one-click",
                detail="missing " + " and ".join(missing), reference=f"{REF} 3.1",
                data={"uris": uris, "post": post or None}))
        else:
            signed = [r for r in dkim_results if r.result == "pass"
                      and {"list-unsubscribe", "list-unsubscribe-post"} <= set(r.signed_headers)]
            if signed:
                out.append(Finding("bulk.one-click", Status.OK,
                                   "one-click List-Unsubscribe, covered by a valid DKIM signature",
                                   reference=f"{REF} 4"))
            else:
                out.append(Finding(
                    "bulk.one-click-unsigned", Status.WARN,
                    "one-click List-Unsubscribe fields are not covered by a valid DKIM signature",
                    reference=f"{REF} 4",
                    fix="sign List-Unsubscribe and List-Unsubscribe-Post (h= tag)"))
    from_domain = msg.from_domain
    if from_domain:
        passing = [r.domain for r in dkim_results if r.result == "pass" and r.domain]
        if any(aligned(d, from_domain, "r") for d in passing) or (
            spf_pass_domain and aligned(spf_pass_domain, from_domain, "r")
        ):
            out.append(Finding("bulk.from-aligned", Status.OK,
                               f"From domain {from_domain} is aligned with DKIM or SPF"))
        elif passing or spf_pass_domain:
            out.append(Finding(
                "bulk.from-not-aligned", Status.WARN,
                f"From domain {from_domain} is aligned with neither DKIM nor SPF",
                detail="passing identities: "
                + ", ".join(passing + ([spf_pass_domain] if spf_pass_domain else [])),
                reference="RFC 7489 3.1"))
    return out
