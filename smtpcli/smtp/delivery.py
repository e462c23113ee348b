"""Run one send: connect, greet, TLS, AUTH, transaction, QUIT against one server or, for direct
delivery, the recipient domain's MX hosts in order (RFC 5321 5.1: on a connection failure or a
4xx, try the next one).

``deliver`` never raises for problems of the peer: the outcome carries the error (with the
transcript so far), so the caller can still report what happened. Bad input still raises
``UsageError`` before any traffic.
"""

from __future__ import annotations

from typing import Any

from smtpcli.errors import (
    ConnectError,
    ExitCode,
    NetworkTimeout,
    SmtpcliError,
    SmtpReplyError,
    UsageError,
)
from smtpcli.records import Record
from smtpcli.smtp.auth import (
    Credentials,
    NotAdvertisedError,
    advertised_mechanisms,
    authenticate,
    choose_mechanism,
)
from smtpcli.smtp.connection import ConnectOptions, SmtpConnection
from smtpcli.smtp.reply import Reply
from smtpcli.smtp.target import Target, TlsMode
from smtpcli.smtp.tlsinfo import TlsInfo
from smtpcli.smtp.transaction import (
    Envelope,
    TransactionOptions,
    TransactionResult,
    run_transaction,
)
from smtpcli.smtp.transcript import Transcript

QUIT_STAGES = ("connect", "banner", "ehlo", "tls", "auth", "mail", "rcpt")


class SendRequest(Record):
    """Everything one send needs; ``targets`` are tried in order when ``fallback``."""

    __slots__ = ("targets", "envelope", "content", "connect", "transaction", "credentials",
                 "auth_mechanism", "quit_after", "fallback", "eight_bit", "smtputf8")

    def __init__(self, targets: list[Target], envelope: Envelope, content: bytes | None,
                 connect: ConnectOptions | None = None,
                 transaction: TransactionOptions | None = None,
                 credentials: Credentials | None = None, auth_mechanism: str | None = None,
                 quit_after: str | None = None, fallback: bool = False,
                 eight_bit: bool = False, smtputf8: bool = False) -> None:
        self.targets = targets
        self.envelope = envelope
        self.content = content
        self.connect = ConnectOptions() if connect is None else connect
        self.transaction = TransactionOptions() if transaction is None else transaction
        self.credentials = credentials
        self.auth_mechanism = auth_mechanism
        self.quit_after = quit_after
        self.fallback = fallback
        self.eight_bit = eight_bit
        self.smtputf8 = smtputf8


class Attempt(Record):
    """One server tried: where, and why it did not take the message (if it did not)."""

    __slots__ = ("target", "outcome", "reason")

    def __init__(self, target: Target, outcome: str, reason: str | None = None) -> None:
        self.target = target
        self.outcome = outcome  # "delivered", "stopped", "rejected", "failed"
        self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target.to_dict(), "outcome": self.outcome}
        if self.reason:
            out["reason"] = self.reason
        return out


class SendOutcome(Record):
    """What happened, stage by stage, on the last server tried."""

    __slots__ = ("transcript", "target", "attempts", "banner", "ehlo", "capabilities", "tls",
                 "tls_note", "auth_mechanism", "auth_reply", "result", "stopped_after", "error",
                 "error_stage")

    def __init__(self, transcript: Transcript, target: Target | None = None,
                 attempts: list[Attempt] | None = None, error: SmtpcliError | None = None,
                 error_stage: str | None = None) -> None:
        self.transcript = transcript
        self.target = target
        self.attempts: list[Attempt] = [] if attempts is None else attempts
        self.banner: Reply | None = None
        self.ehlo: Reply | None = None
        self.capabilities: dict[str, str] = {}
        self.tls: TlsInfo | None = None
        self.tls_note: str | None = None  # why there is no TLS (opportunistic mode)
        self.auth_mechanism: str | None = None
        self.auth_reply: Reply | None = None
        self.result: TransactionResult | None = None
        self.stopped_after: str | None = None
        self.error = error
        self.error_stage = error_stage

    def exit_code(self, *, allow_partial: bool = False) -> ExitCode:
        """DESIGN.md: 0 delivered (or stopped cleanly), 3 could not complete, 4 transient,
        5 permanent; a partial acceptance is 5 unless ``allow_partial``."""
        if self.error is not None:
            return ExitCode(int(self.error.exit_code))
        res = self.result
        if res is None:
            return ExitCode.OK
        replies: list[Reply] = []
        if res.mail_reply is not None and not res.mail_reply.positive:
            replies.append(res.mail_reply)
        elif res.recipients and not res.accepted:
            replies.extend(r.reply for r in res.rejected)
        elif res.data_reply is not None and res.data_reply.code != 250:
            replies.append(res.data_reply)
        elif res.rejected and not allow_partial:
            return ExitCode.PERMANENT
        if not replies:
            return ExitCode.OK
        if any(r.permanent for r in replies):
            return ExitCode.PERMANENT
        if any(r.transient for r in replies):
            return ExitCode.TRANSIENT
        return ExitCode.INCOMPLETE  # a reply outside 2xx-5xx where one was needed


def _stop(conn: SmtpConnection, outcome: SendOutcome, stage: str, quit_after: str | None) -> bool:
    if quit_after == stage:
        outcome.stopped_after = stage
        conn.quit()
        return True
    return False


def _require(
    reply: Reply, what: str, conn: SmtpConnection, ok: tuple[int, ...], stage: str
) -> None:
    if reply.code not in ok:
        conn.transcript.failed_stage = stage
        raise SmtpReplyError(
            f"{conn.where} {what}: {reply.one_line()}", code=reply.code, reply=reply.text
        )


def _session(conn: SmtpConnection, req: SendRequest, outcome: SendOutcome) -> None:
    """One attempt, up to QUIT. Raises SmtpcliError for anything that ends it early."""
    tr = conn.transcript
    outcome.target = conn.target
    if req.quit_after == "connect":
        conn.open(greeting=False)
        outcome.tls = conn.tls
        outcome.stopped_after = "connect"
        conn.close()
        return
    banner = conn.open()
    assert banner is not None
    outcome.banner, outcome.tls = banner, conn.tls
    _require(banner, "did not greet with 220", conn, (220,), "banner")
    if _stop(conn, outcome, "banner", req.quit_after):
        return
    ehlo = conn.hello()
    outcome.ehlo, outcome.capabilities = ehlo, conn.capabilities()
    _require(ehlo, "rejected EHLO and HELO", conn, (250,), "ehlo")
    if _stop(conn, outcome, "ehlo", req.quit_after):
        return
    mode = conn.target.tls
    if mode in (TlsMode.STARTTLS, TlsMode.OPPORTUNISTIC):
        if conn.has_extn("starttls"):
            try:
                outcome.tls = conn.start_tls()
            except SmtpReplyError as exc:
                if mode is TlsMode.STARTTLS:
                    raise
                # RFC 3207 4.1: after a refused STARTTLS the client may go on without TLS.
                outcome.tls_note = f"STARTTLS refused ({exc.reply or exc.code}); continued without TLS"
                tr.info(outcome.tls_note)
            else:
                ehlo = conn.hello()
                outcome.ehlo, outcome.capabilities = ehlo, conn.capabilities()
                _require(ehlo, "rejected EHLO after STARTTLS", conn, (250,), "ehlo")
        elif mode is TlsMode.STARTTLS:
            raise NotAdvertisedError(
                f"{conn.where} does not offer STARTTLS",
                hint="use --tls opportunistic to send without TLS, or --tls implicit for port 465",
            )
        else:
            outcome.tls_note = "the server does not offer STARTTLS; sent without TLS"
            tr.info(outcome.tls_note)
    elif mode is TlsMode.NONE:
        outcome.tls_note = "TLS not used (--tls none)"
    if _stop(conn, outcome, "tls", req.quit_after):
        return
    if req.credentials is not None:
        mech = choose_mechanism(advertised_mechanisms(conn), req.auth_mechanism, req.credentials)
        outcome.auth_mechanism = mech
        outcome.auth_reply = authenticate(conn, mech, req.credentials)
    if _stop(conn, outcome, "auth", req.quit_after):
        return
    topts = req.transaction
    if req.quit_after in ("mail", "rcpt") and topts.quit_after != req.quit_after:
        topts = topts.replace(quit_after=req.quit_after)
    outcome.result = run_transaction(
        conn, req.envelope, req.content, eight_bit=req.eight_bit, smtputf8=req.smtputf8,
        options=topts,
    )
    outcome.stopped_after = outcome.result.stopped_after
    if outcome.result.closed_by_server:
        tr.info("the server closed the session (421)")
        conn.close()
    else:
        conn.quit()


def _transient(outcome: SendOutcome) -> bool:
    res = outcome.result
    if res is None:
        return False
    if res.closed_by_server:
        return True
    if res.mail_reply is not None and res.mail_reply.transient:
        return True
    if res.recipients and not res.accepted and all(r.reply.transient for r in res.rejected):
        return True
    return res.data_reply is not None and res.data_reply.transient


def deliver(req: SendRequest, transcript: Transcript | None = None) -> SendOutcome:
    """Try the targets in order (only the first unless ``req.fallback``); see module docstring."""
    if not req.targets:
        raise UsageError("nothing to connect to")
    tr = transcript or Transcript(redact_secrets=not req.connect.show_secrets)
    outcome = SendOutcome(transcript=tr)
    targets = req.targets if req.fallback else req.targets[:1]
    for index, target in enumerate(targets):
        more = index < len(targets) - 1
        if index:
            tr.info(f"trying the next mail host: {target.host}")
        # Reset per-attempt facts; the transcript and attempts accumulate.
        fresh = SendOutcome(transcript=tr, attempts=outcome.attempts)
        outcome = fresh
        conn = SmtpConnection(target, req.connect, tr)
        tr.failed_stage = None
        try:
            _session(conn, req, outcome)
        except SmtpcliError as exc:
            conn.close()
            outcome.error, outcome.error_stage = exc, tr.failed_stage or tr.stage
            retry = isinstance(exc, (ConnectError, NetworkTimeout)) or (
                isinstance(exc, SmtpReplyError) and 400 <= exc.code < 500
            )
            outcome.attempts.append(Attempt(target, "failed", exc.one_line()))
            if more and retry:
                tr.info(f"{target.display}: {exc.one_line()}")
                continue
            return outcome
        if outcome.stopped_after:
            outcome.attempts.append(Attempt(target, "stopped", f"--quit-after {outcome.stopped_after}"))
            return outcome
        delivered = outcome.result is not None and outcome.result.delivered
        if delivered:
            outcome.attempts.append(Attempt(target, "delivered"))
            return outcome
        outcome.attempts.append(Attempt(target, "rejected"))
        if more and _transient(outcome):
            continue
        return outcome
    return outcome
