"""STARTTLS command injection (CVE-2011-0411 and its many relatives).

A man in the middle can append commands to the client's plaintext ``STARTTLS`` line; a server
that keeps its plaintext input buffer across the TLS handshake then runs them as if the client
had sent them inside TLS. RFC 3207 4.2 and RFC 5321 4.1.1.9 aside, the fix is to discard
buffered input when STARTTLS completes. The probe sends ``STARTTLS\\r\\nRSET\\r\\n`` in one
packet, completes the handshake and listens: a reply that arrives before we have said anything
over TLS (or two replies to our one EHLO) is the answer to the injected RSET.
"""

from __future__ import annotations

from typing import Any

from smtpcli.errors import ProtocolError, SmtpcliError, TlsError
from smtpcli.results import Finding, Status
from smtpcli.security.common import SecurityOptions, error_finding, open_session, quit_quietly
from smtpcli.security.wire import TimedReply, Wire
from smtpcli.smtp.target import Target, TlsMode

ID = "security.starttls-injection"
REFERENCE = "CVE-2011-0411; RFC 3207 4.2"
INJECTED = b"STARTTLS\r\nRSET\r\n"


def _probe(wire: Wire, options: SecurityOptions) -> dict[str, Any]:
    data: dict[str, Any] = {"sent": INJECTED.decode()}
    try:
        return _exchange(wire, options, data)
    except (ProtocolError, TlsError) as exc:
        # The server hung up on seeing a command pipelined after STARTTLS (Dovecot does):
        # nothing injected can run. Whether it is a defence or broken TLS is settled by a
        # clean STARTTLS on another connection (see check).
        data["verdict"] = "closed"
        data["closed"] = exc.one_line()
        return data


def _exchange(wire: Wire, options: SecurityOptions, data: dict[str, Any]) -> dict[str, Any]:
    wire.mark()
    wire.send(INJECTED)  # one write: both commands reach the server in the same segment
    first = wire.reply()
    data["starttls_reply"] = first.reply.one_line()
    if first.code != 220:
        data["verdict"] = "starttls-refused"
        late = wire.poll(options.quiet)
        if late is not None:
            data["plaintext_replies"] = [late.to_dict()]
        return data
    leftover = wire.handshake()
    if leftover:
        data["plaintext_after_220"] = leftover.decode("utf-8", "replace")
    injected: list[TimedReply] = []
    wire.mark()
    unsolicited = wire.poll(options.quiet)
    if unsolicited is not None:
        injected.append(unsolicited)
    ehlo = wire.hello()
    data["ehlo_reply_code"] = ehlo.code
    extra = wire.poll(options.quiet)
    if extra is not None:
        # Our EHLO got two answers: the first was the injected RSET's.
        injected.append(extra)
    data["replies_after_handshake"] = [r.to_dict() for r in injected]
    data["verdict"] = "vulnerable" if injected else "not-vulnerable"
    return data


def check(target: Target, options: SecurityOptions) -> list[Finding]:
    """One ``security.starttls-injection`` finding."""
    if target.tls is TlsMode.IMPLICIT:
        return [Finding(id=ID, status=Status.OK, reference=REFERENCE,
                        summary="not applicable: implicit TLS has no STARTTLS")]
    wire: Wire | None = None
    data: dict[str, Any] = {}
    try:
        wire = open_session(target, options, tls=False)
        if "STARTTLS" not in wire.capabilities:
            return [Finding(id=ID, status=Status.OK, reference=REFERENCE,
                            summary="not applicable: STARTTLS is not offered")]
        data = _probe(wire, options)
        if data["verdict"] == "closed":
            quit_quietly(wire)
            # Control: a STARTTLS sent alone. If that works, the close was the defence.
            wire = open_session(target, options, tls=True)
            data["control"] = "a STARTTLS sent alone succeeded"
    except SmtpcliError as exc:
        if data.get("verdict") == "closed":
            return [error_finding(ID, "the STARTTLS injection probe", TlsError(
                f"STARTTLS itself fails, so injection cannot be tested: {exc.one_line()}"))]
        return [error_finding(ID, "the STARTTLS injection probe", exc)]
    finally:
        if wire is not None:
            quit_quietly(wire)
    if data["verdict"] == "vulnerable":
        return [Finding(
            id=ID, status=Status.FAIL, reference=REFERENCE, data=data,
            summary="STARTTLS command injection: a command sent in plaintext with STARTTLS was "
                    "answered inside TLS",
            detail="The server keeps its plaintext input across the TLS handshake, so a man in "
                   "the middle can inject commands (RSET, MAIL FROM, AUTH...) into the "
                   "encrypted session.",
            fix="Upgrade the server; it must discard buffered input when STARTTLS completes.")]
    if data["verdict"] == "closed":
        return [Finding(id=ID, status=Status.OK, reference=REFERENCE, data=data,
                        summary="no STARTTLS command injection: the server closed the connection "
                                "when a command came pipelined after STARTTLS (a defence), "
                                f"while {data['control']}")]
    if data["verdict"] == "starttls-refused":
        return [Finding(id=ID, status=Status.OK, reference=REFERENCE, data=data,
                        summary=f"STARTTLS with a pipelined command was refused "
                                f"({data['starttls_reply']})")]
    return [Finding(id=ID, status=Status.OK, reference=REFERENCE, data=data,
                    summary="no STARTTLS command injection: the pipelined RSET was discarded")]
