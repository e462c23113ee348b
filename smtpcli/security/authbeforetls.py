"""AUTH before TLS: is AUTH offered, or an AUTH exchange started, on a plaintext connection?

The probe starts ``AUTH PLAIN`` (or the first advertised mechanism) without an initial response;
a 334 challenge means the server would take a password in clear text. It then cancels with
"*" (RFC 4954 4) and never sends a credential. Advertising AUTH before STARTTLS is a risk by
itself: clients that send the initial response (``AUTH PLAIN <base64>``) give the password away
before the server can refuse (RFC 4954 4, 14: use TLS; RFC 8314 for submission).
"""

from __future__ import annotations

from smtpcli.errors import SmtpcliError
from smtpcli.results import Finding, Status
from smtpcli.security.common import SecurityOptions, error_finding, open_session, quit_quietly
from smtpcli.security.wire import Wire
from smtpcli.smtp.target import Target, TlsMode

ID = "security.auth-before-tls"
REFERENCE = "RFC 4954 4, 14; RFC 3207 6; RFC 8314"


def check(target: Target, options: SecurityOptions) -> list[Finding]:
    """One ``security.auth-before-tls`` finding."""
    if target.tls is TlsMode.IMPLICIT:
        return [Finding(id=ID, status=Status.OK, reference=REFERENCE,
                        summary="not applicable: implicit TLS, nothing is sent in clear")]
    wire: Wire | None = None
    try:
        wire = open_session(target, options, tls=False)
        caps = wire.capabilities
        mechanisms = caps.get("AUTH", "").upper().split()
        offered = "AUTH" in caps
        mech = "PLAIN" if "PLAIN" in mechanisms or not mechanisms else mechanisms[0]
        reply = wire.command(f"AUTH {mech}")
        accepted = reply.code == 334
        data = {
            "offered_before_tls": offered, "mechanisms": mechanisms,
            "starttls_offered": "STARTTLS" in caps, "tried": mech,
            "reply": reply.one_line(),
        }
        if accepted:
            cancel = wire.command("*")
            data["cancel_reply"] = cancel.one_line()
    except SmtpcliError as exc:
        return [error_finding(ID, "the AUTH-before-TLS probe", exc)]
    finally:
        if wire is not None:
            quit_quietly(wire)
    fix = ("Offer AUTH only after STARTTLS (Postfix: smtpd_tls_auth_only = yes) or use implicit "
           "TLS on port 465 for submission.")
    if accepted:
        return [Finding(
            id=ID, status=Status.FAIL, reference=REFERENCE, fix=fix, data=data,
            summary=f"AUTH {mech} accepted before TLS: passwords would travel in clear text",
            detail=f"The server answered AUTH {mech} with 334 on a plaintext connection "
                   "(the probe cancelled with '*' and sent no credentials).")]
    if offered:
        return [Finding(
            id=ID, status=Status.WARN, reference=REFERENCE, fix=fix, data=data,
            summary=f"AUTH ({' '.join(mechanisms) or 'no mechanisms'}) advertised before TLS, "
                    f"though AUTH {mech} was refused ({reply.code})",
            detail="Clients that send the initial response with the AUTH command give the "
                   "password away before the server can refuse it.")]
    return [Finding(id=ID, status=Status.OK, reference=REFERENCE, data=data,
                    summary=f"AUTH neither advertised nor accepted before TLS ({reply.code})")]
