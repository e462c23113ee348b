"""Turn a ``SendOutcome`` into the shared ``Report``: findings with stable ids, JSON-safe facts.

Finding ids: ``smtp.delivered``, ``smtp.stopped``, ``smtp.mail-rejected``, ``smtp.rcpt-rejected``,
``smtp.partial``, ``smtp.data-rejected``, ``smtp.closed-by-server``, ``smtp.greeting-rejected``,
``smtp.ehlo-rejected``, ``smtp.connect-failed``, ``smtp.timeout``, ``smtp.protocol-error``,
``smtp.not-advertised``, ``auth.ok``, ``auth.failed``, ``tls.ok``, ``tls.none``,
``tls.starttls-refused``, ``tls.verification-off``, ``tls.opportunistic``, ``tls.handshake-failed``,
``tls.cert-untrusted``, ``tls.cert-self-signed``, ``tls.cert-expired``,
``tls.cert-not-yet-valid``, ``tls.hostname-mismatch``, ``dns.lookup-failed``,
``mx.no-mail-domain``.
"""

from __future__ import annotations

from typing import Any

from smtpcli.errors import ExitCode, SmtpReplyError
from smtpcli.results import Report, Status
from smtpcli.smtp.delivery import SendOutcome
from smtpcli.smtp.explain_hook import explain_reply, explain_summary
from smtpcli.smtp.reply import Reply
from smtpcli.smtp.target import TlsMode
from smtpcli.smtp.tlsinfo import classify_verify_error


def reply_facts(reply: Reply | None) -> dict[str, Any] | None:
    """A reply as facts, with the explain record inline for 4xx/5xx."""
    if reply is None:
        return None
    out = reply.to_dict()
    record = explain_reply(reply)
    if record:
        out["explain"] = record
    return out


def _detail(reply: Reply) -> str:
    lines = [reply.one_line()]
    summary = explain_summary(explain_reply(reply))
    if summary:
        lines.append(f"explain: {summary}")
    return "\n".join(lines)


_ERROR_IDS = {
    "connect": "smtp.connect-failed", "timeout": "smtp.timeout", "protocol": "smtp.protocol-error",
    "capability": "smtp.not-advertised", "dns": "dns.lookup-failed",
    "no-mail-domain": "mx.no-mail-domain", "tls": "tls.handshake-failed",
}
_REPLY_STAGE_IDS = {
    "banner": "smtp.greeting-rejected", "ehlo": "smtp.ehlo-rejected",
    "starttls": "tls.starttls-refused", "auth": "auth.failed",
}


def build_report(
    outcome: SendOutcome, *, allow_partial: bool = False, insecure: bool = False,
    opportunistic: bool = False, message: dict[str, Any] | None = None, envelope: dict[str, Any] | None = None,
    mx: list[dict[str, Any]] | None = None,
) -> Report:
    """The report of one send (see module docstring for the finding ids)."""
    target = outcome.target.display if outcome.target else None
    report = Report(command="send", target=target)
    facts = report.facts
    if outcome.target is not None:
        facts["target"] = outcome.target.to_dict()
    if mx is not None:
        facts["mx"] = mx
    if len(outcome.attempts) > 1 or mx is not None:
        facts["attempts"] = [a.to_dict() for a in outcome.attempts]
    facts["banner"] = reply_facts(outcome.banner)
    facts["ehlo"] = {"reply": reply_facts(outcome.ehlo), "capabilities": outcome.capabilities} \
        if outcome.ehlo else None
    facts["tls"] = outcome.tls.to_dict() if outcome.tls else None
    if outcome.tls_note:
        facts["tls_note"] = outcome.tls_note
    facts["auth"] = {"mechanism": outcome.auth_mechanism,
                     "reply": reply_facts(outcome.auth_reply)} if outcome.auth_mechanism else None
    if envelope is not None:
        facts["envelope"] = envelope
    res = outcome.result
    if res is not None:
        facts["mail"] = {"reply": reply_facts(res.mail_reply), "params": res.mail_params}
        facts["recipients"] = [
            {"address": r.address, "accepted": r.accepted, "reply": reply_facts(r.reply)}
            for r in res.recipients
        ]
        facts["content"] = {"method": res.method, "reply": reply_facts(res.data_reply)}
        facts["pipelined"] = res.pipelined
    facts["queue_id"] = res.queue_id if res else None
    if message is not None:
        facts["message"] = message
    facts["transcript"] = outcome.transcript.to_list()
    facts["timings"] = outcome.transcript.timings_ms()

    _tls_findings(report, outcome, insecure, opportunistic)
    if outcome.auth_mechanism and outcome.auth_reply is not None:
        report.add("auth.ok", Status.OK, f"authenticated with {outcome.auth_mechanism}",
                   detail=outcome.auth_reply.one_line())
    if outcome.error is not None:
        _error_finding(report, outcome)
    elif res is not None:
        _transaction_findings(report, outcome, allow_partial)
    elif outcome.stopped_after:
        report.add("smtp.stopped", Status.INFO, f"stopped after {outcome.stopped_after} (--quit-after)")
    if outcome.stopped_after and res is not None and outcome.error is None:
        report.add("smtp.stopped", Status.INFO, f"stopped after {outcome.stopped_after} (--quit-after)")
    code = outcome.exit_code(allow_partial=allow_partial)
    report.exit_code = int(code)
    report.summary = _summary(outcome, code)
    return report


def _tls_findings(
    report: Report, outcome: SendOutcome, insecure: bool, opportunistic: bool = False
) -> None:
    tls = outcome.tls
    if opportunistic and tls is not None and not tls.verified:
        report.add("tls.opportunistic", Status.WARN,
                   "opportunistic TLS, as MTAs deliver (RFC 7435): encrypted, but the MX's "
                   "certificate was not verified, so the server was not authenticated",
                   fix="--tls-verify makes a certificate that does not verify a failure")
    if insecure:
        report.add("tls.verification-off", Status.WARN,
                   "certificate verification is OFF (--insecure): the server was not authenticated",
                   fix="trust the server's CA with --cafile instead")
    if tls is not None:
        what = f"{tls.protocol} {tls.cipher}"
        if tls.verified:
            report.add("tls.ok", Status.OK, f"{what}, certificate verified for {tls.server_name}")
        else:
            err = tls.verify_error or "not verified"
            report.add(tls.problem_id() or classify_verify_error(err), Status.WARN,
                       f"{what}, certificate would NOT verify for {tls.server_name}: {err}")
        if tls.hostname_match is False and tls.problem_id() != "tls.hostname-mismatch":
            report.add("tls.hostname-mismatch", Status.WARN,
                       f"the certificate does not name {tls.server_name}")
    elif outcome.tls_note and outcome.error is None and outcome.stopped_after not in (
        "connect", "banner", "ehlo"
    ):
        fid = "tls.starttls-refused" if "refused" in outcome.tls_note else "tls.none"
        asked = outcome.target is not None and outcome.target.tls is TlsMode.NONE
        report.add(fid, Status.INFO if asked else Status.WARN, outcome.tls_note)


def _error_finding(report: Report, outcome: SendOutcome) -> None:
    exc = outcome.error
    assert exc is not None
    stage = outcome.error_stage or "connect"
    if isinstance(exc, SmtpReplyError):
        reply = Reply(exc.code, tuple(exc.reply.splitlines()) if exc.reply else ())
        fid = _REPLY_STAGE_IDS.get(stage, "smtp.rejected")
        report.add(fid, Status.FAIL, exc.one_line(), detail=_detail(reply) if exc.reply else None,
                   data={"stage": stage, "reply": reply_facts(reply)})
        return
    fid = getattr(exc, "finding_id", None) or _ERROR_IDS.get(exc.kind, "smtp.error")
    report.add(fid, Status.ERROR, exc.one_line(), data={"stage": stage, "kind": exc.kind})
    report.facts["error"] = {"kind": exc.kind, "message": exc.one_line(), "stage": stage}


def _transaction_findings(report: Report, outcome: SendOutcome, allow_partial: bool) -> None:
    res = outcome.result
    assert res is not None
    if res.mail_reply is not None and not res.mail_reply.positive:
        report.add("smtp.mail-rejected", Status.FAIL,
                   f"sender rejected: {res.mail_reply.one_line()}", detail=_detail(res.mail_reply))
        return
    for r in res.rejected:
        report.add("smtp.rcpt-rejected", Status.FAIL, f"recipient <{r.address}> rejected: "
                   f"{r.reply.one_line()}", subject=r.address, detail=_detail(r.reply))
    if res.closed_by_server:
        report.add("smtp.closed-by-server", Status.FAIL, "the server closed the session (421)")
    if res.data_reply is not None and res.data_reply.code != 250:
        report.add("smtp.data-rejected", Status.FAIL,
                   f"message rejected: {res.data_reply.one_line()}", detail=_detail(res.data_reply))
        return
    if res.delivered:
        qid = f" (queue id {res.queue_id})" if res.queue_id else ""
        host = outcome.target.display if outcome.target else "the server"
        report.add("smtp.delivered", Status.OK,
                   f"accepted by {host} for {len(res.accepted)} of {len(res.recipients)} "
                   f"recipient(s){qid}", detail=res.data_reply.one_line() if res.data_reply else None)
        if res.rejected:
            report.add("smtp.partial", Status.WARN if allow_partial else Status.FAIL,
                       f"{len(res.rejected)} recipient(s) rejected, {len(res.accepted)} accepted",
                       fix=None if allow_partial else "--allow-partial makes this exit 0")


def _summary(outcome: SendOutcome, code: ExitCode) -> str:
    res = outcome.result
    if outcome.error is not None:
        return outcome.error.one_line()
    if outcome.stopped_after:
        return f"stopped after {outcome.stopped_after} as asked (--quit-after)"
    if res is None:
        return "nothing sent"
    if res.delivered:
        qid = f", queue id {res.queue_id}" if res.queue_id else ""
        part = f" ({len(res.rejected)} rejected)" if res.rejected else ""
        return f"message accepted for {len(res.accepted)} recipient(s){part}{qid}"
    if res.mail_reply is not None and not res.mail_reply.positive:
        return f"sender rejected: {res.mail_reply.one_line()}"
    if res.recipients and not res.accepted:
        return "every recipient was rejected"
    if res.data_reply is not None:
        return f"message rejected: {res.data_reply.one_line()}"
    return "not delivered"
