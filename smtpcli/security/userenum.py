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
    return f"{user}@{domain}" if domain else user


def _ask(wire: Wire, verb: str, names: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        reply = wire.command(f"{verb} {name}")
        out[name] = {"code": reply.code, "reply": reply.one_line()}
    return out


def _vrfy_finding(answers: dict[str, dict[str, Any]], unknown: str) -> Finding:
    unknown_code = answers[unknown]["code"]
    known = {n: a for n, a in answers.items() if n != unknown}
    confirmed = [n for n, a in known.items()
                 if a["code"] in (250, 251) and unknown_code // 100 != 2]
    data = {"answers": answers, "random_user": unknown}
    if confirmed:
        return Finding(
            id=VRFY_ID, status=Status.WARN,
            summary=f"VRFY confirms users: {', '.join(confirmed)} (a random user gets {unknown_code})",
            detail="VRFY tells existing from unknown users, so addresses can be harvested.",
            reference="RFC 5321 3.5.3, 7.3",
            fix="Disable VRFY (Postfix: disable_vrfy_command = yes) or answer 252 to every name.",
            data=data)
    codes = sorted({a["code"] for a in answers.values()})
    if all(c in (500, 502, 504) for c in codes):
        why = "VRFY is disabled"
    elif len(codes) == 1:
        why = f"VRFY answers {codes[0]} to every name"
    else:
        why = "VRFY does not confirm a known user"
    return Finding(id=VRFY_ID, status=Status.OK, summary=why, reference="RFC 5321 3.5.3",
                   data=data)


def _expn_finding(answers: dict[str, dict[str, Any]], unknown: str) -> Finding:
    expanded = [n for n, a in answers.items() if n != unknown and a["code"] in (250, 251)]
    data = {"answers": answers, "random_user": unknown}
    if expanded:
        return Finding(
            id=EXPN_ID, status=Status.WARN,
            summary=f"EXPN is enabled and expands {', '.join(expanded)}",
            detail="EXPN reveals the members of mailing lists and aliases.",
            reference="RFC 5321 3.5.3, 7.3",
            fix="Disable EXPN (sendmail: PrivacyOptions=noexpn; Exim: no acl_smtp_expn).",
            data=data)
    codes = sorted({a["code"] for a in answers.values()})
    why = "EXPN is disabled" if all(c in (500, 502, 504, 252) for c in codes) else (
        "EXPN expands nothing")
    return Finding(id=EXPN_ID, status=Status.OK, summary=why, reference="RFC 5321 3.5.3",
                   data=data)


def _rcpt_finding(wire: Wire, known: str, unknown: str) -> Finding:
    answers: dict[str, dict[str, Any]] = {}
    mail = wire.command("MAIL FROM:<>")
    if mail.code // 100 != 2:
        wire.command("RSET")
        return Finding(id=RCPT_ID, status=Status.OK,
                       summary=f"RCPT enumeration not testable: MAIL FROM:<> got {mail.one_line()}",
                       data={"mail_reply": mail.one_line()})
    for rcpt in (known, unknown):
        reply = wire.command(f"RCPT TO:<{rcpt}>")
        answers[rcpt] = {"code": reply.code, "reply": reply.one_line()}
    wire.command("RSET")
    data = {"answers": answers, "random_user": unknown}
    kc, uc = answers[known]["code"], answers[unknown]["code"]
    if kc // 100 == 2 and uc // 100 != 2:
        return Finding(
            id=RCPT_ID, status=Status.INFO,
            summary=f"RCPT tells users apart: {known} gets {kc}, a random user {uc}",
            detail="Normal for servers that reject unknown recipients at RCPT time (RFC 5321 "
                   "recommends it over accepting and bouncing); addresses can be harvested this "
                   "way, so limit it with tarpitting or rate limits.",
            reference="RFC 5321 3.3, 7.3",
            fix="Rate-limit or tarpit clients that send many unknown recipients "
                "(Postfix: smtpd_hard_error_limit, smtpd_error_sleep_time).",
            data=data)
    return Finding(id=RCPT_ID, status=Status.OK,
                   summary=f"RCPT answers a known and a random user alike ({kc} / {uc})",
                   reference="RFC 5321 3.3", data=data)


def check(target: Target, options: SecurityOptions) -> list[Finding]:
    """``security.vrfy-enum``, ``security.expn-enabled`` and ``security.rcpt-enum``."""
    findings: list[Finding] = []
    unknown_user = random_user()
    probes = ((VRFY_ID, "VRFY"), (EXPN_ID, "EXPN"), (RCPT_ID, "RCPT"))
    for fid, verb in probes:
        wire: Wire | None = None
        try:
            wire = open_session(target, options)
            domain = options.user_domain or options.local_domain or wire.announced_name()
            names = [_address(u, domain) for u in options.known_users]
            unknown = _address(unknown_user, domain)
            if verb == "VRFY":
                findings.append(_vrfy_finding(_ask(wire, "VRFY", [*names, unknown]), unknown))
            elif verb == "EXPN":
                findings.append(_expn_finding(_ask(wire, "EXPN", [*names, unknown]), unknown))
            else:
                known = _address(options.known_users[0] if options.known_users else "postmaster",
                                 domain or "localhost")
                findings.append(_rcpt_finding(wire, known, _address(unknown_user, domain or "localhost")))
        except SmtpcliError as exc:
            findings.append(error_finding(fid, f"the {verb} enumeration probe", exc))
        finally:
            if wire is not None:
                quit_quietly(wire)
    return findings
