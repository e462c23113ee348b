"""User enumeration: do VRFY, EXPN or RCPT answer differently for a user that exists
(postmaster must, RFC 5321 4.5.1) and for a random one?

RFC 5321 3.5.3 lets a server answer VRFY with 252 ("cannot verify, will attempt delivery") and
7.3 says VRFY/EXPN may be disabled for privacy. RCPT answers that differ are normal for servers
that reject unknown recipients at RCPT time (which avoids backscatter); they are reported as
information, since tarpitting or rate limits are the only mitigation.
"""

from __future__ import annotations

from typing import Any

from smtpcli.errors import SmtpcliError
from smtpcli.results import Finding, Status
from smtpcli.security.common import (
    SecurityOptions,
    error_finding,
    open_session,
    quit_quietly,
    random_user,
)
from smtpcli.security.wire import Wire
from smtpcli.smtp.target import Target

VRFY_ID = "security.vrfy-enum"
EXPN_ID = "security.expn-enabled"
RCPT_ID = "security.rcpt-enum"


def _address(user: str, domain: str | None) -> str:
    """A full address is used as it is; a bare name gets the mail domain (RFC 5321 3.5.3)."""
    if "@" in user or not domain:
        return user
    return f"{user}@{domain}"


def _ask(wire: Wire, verb: str, names: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        reply = wire.command(f"{verb} {name}")
        out[name] = {"code": reply.code, "reply": reply.one_line()}
    return out


def told_apart(answers: dict[str, dict[str, Any]], unknown: str, accepted: tuple[int, ...]
               ) -> list[str]:
    """Known names whose answer is one of ``accepted`` while the unknown user's is not 2xx:
    the server tells existing users from unknown ones (Postfix: VRFY 252 vs 550 5.1.1)."""
    unknown_code = answers[unknown]["code"]
    if unknown_code // 100 == 2:
        return []
    return [n for n, a in answers.items()
            if n != unknown and a["code"] in accepted and a["code"] != unknown_code]


def _vrfy_finding(answers: dict[str, dict[str, Any]], unknown: str,
                  data: dict[str, Any]) -> Finding:
    unknown_code = answers[unknown]["code"]
    confirmed = told_apart(answers, unknown, (250, 251, 252))
    data = {**data, "answers": answers, "random_user": unknown}
    if confirmed:
        shown = ", ".join(f"{n} gets {answers[n]['code']}" for n in confirmed)
        return Finding(
            id=VRFY_ID, status=Status.WARN,
            summary=f"VRFY tells users apart: {shown}, a random user {unknown_code} "
                    f"({answers[unknown]['reply']})",
            detail="VRFY answers existing and unknown users differently, so addresses can be "
                   "harvested (a 252 for users that exist and a 5xx for others is enough).",
            reference="RFC 5321 3.5.3, 7.3",
            fix="Disable VRFY (Postfix: disable_vrfy_command = yes) or answer 252 to every name.",
            data=data)
    codes = sorted({a["code"] for a in answers.values()})
    if all(c in (500, 502, 504) for c in codes):
        why = "VRFY is disabled"
    elif len(codes) == 1:
        why = f"VRFY answers {codes[0]} to every name"
    else:
        why = "VRFY does not tell a known user from a random one"
    return Finding(id=VRFY_ID, status=Status.OK, reference="RFC 5321 3.5.3", data=data,
                   summary=f"{why} (asked at {data['domain'] or 'no domain'})")


def _expn_finding(answers: dict[str, dict[str, Any]], unknown: str,
                  data: dict[str, Any]) -> Finding:
    expanded = told_apart(answers, unknown, (250, 251))
    data = {**data, "answers": answers, "random_user": unknown}
    if expanded:
        return Finding(
            id=EXPN_ID, status=Status.WARN,
            summary=f"EXPN is enabled and expands {', '.join(expanded)} "
                    f"(a random user gets {answers[unknown]['code']})",
            detail="EXPN reveals the members of mailing lists and aliases.",
            reference="RFC 5321 3.5.3, 7.3",
            fix="Disable EXPN (sendmail: PrivacyOptions=noexpn; Exim: no acl_smtp_expn).",
            data=data)
    codes = sorted({a["code"] for a in answers.values()})
    why = "EXPN is disabled" if all(c in (500, 502, 504, 252) for c in codes) else (
        "EXPN expands nothing")
    return Finding(id=EXPN_ID, status=Status.OK, reference="RFC 5321 3.5.3", data=data,
                   summary=f"{why} (asked at {data['domain'] or 'no domain'})")


def _rcpt_finding(wire: Wire, known: list[str], unknown: str, data: dict[str, Any]) -> Finding:
    answers: dict[str, dict[str, Any]] = {}
    mail = wire.command("MAIL FROM:<>")
    if mail.code // 100 != 2:
        wire.command("RSET")
        return Finding(id=RCPT_ID, status=Status.INFO,
                       summary=f"RCPT enumeration not tested: MAIL FROM:<> got {mail.one_line()}",
                       data={**data, "mail_reply": mail.one_line()})
    for rcpt in (*known, unknown):
        reply = wire.command(f"RCPT TO:<{rcpt}>")
        answers[rcpt] = {"code": reply.code, "reply": reply.one_line()}
    wire.command("RSET")
    data = {**data, "answers": answers, "random_user": unknown}
    uc = answers[unknown]["code"]
    apart = told_apart(answers, unknown, tuple(range(200, 300)))
    if apart:
        shown = ", ".join(f"{n} gets {answers[n]['code']}" for n in apart)
        return Finding(
            id=RCPT_ID, status=Status.INFO,
            summary=f"RCPT tells users apart: {shown}, a random user {uc}",
            detail="Normal for servers that reject unknown recipients at RCPT time (RFC 5321 "
                   "recommends it over accepting and bouncing); addresses can be harvested this "
                   "way, so limit it with tarpitting or rate limits.",
            reference="RFC 5321 3.3, 7.3",
            fix="Rate-limit or tarpit clients that send many unknown recipients "
                "(Postfix: smtpd_hard_error_limit, smtpd_error_sleep_time).",
            data=data)
    codes = "/".join(str(answers[n]["code"]) for n in (*known, unknown))
    return Finding(id=RCPT_ID, status=Status.OK, reference="RFC 5321 3.3", data=data,
                   summary=f"RCPT answers known users and a random one alike ({codes})")


def check(target: Target, options: SecurityOptions) -> list[Finding]:
    """``security.vrfy-enum``, ``security.expn-enabled`` and ``security.rcpt-enum``: the same
    question about known users and a random one, at the server's mail domain."""
    findings: list[Finding] = []
    unknown_user = random_user()
    probes = ((VRFY_ID, "VRFY"), (EXPN_ID, "EXPN"), (RCPT_ID, "RCPT"))
    for fid, verb in probes:
        wire: Wire | None = None
        try:
            # One connection per verb: a server counting our errors (Exim drops a client after
            # three syntax errors) must not cost the next verb its answers.
            wire = open_session(target, options)
            domain, source = options.mail_domain(wire.announced_name())
            names = [_address(u, domain) for u in options.known_users]
            unknown = _address(unknown_user, domain)
            data: dict[str, Any] = {"domain": domain, "domain_from": source}
            if verb == "RCPT":
                findings.append(_rcpt_finding(wire, names, unknown, data))
            else:
                judge = _vrfy_finding if verb == "VRFY" else _expn_finding
                findings.append(judge(_ask(wire, verb, [*names, unknown]), unknown, data))
        except SmtpcliError as exc:
            findings.append(error_finding(fid, f"the {verb} enumeration probe", exc))
        finally:
            if wire is not None:
                quit_quietly(wire)
    return findings
