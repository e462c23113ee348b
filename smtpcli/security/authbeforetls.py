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
#: Mechanisms whose exchange carries the secret itself (base64 is not encryption).
CLEARTEXT = ("PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER")
#: Challenge-response mechanisms: the password never travels, but the user name and a digest
#: an eavesdropper can attack offline do (RFC 2195 5, RFC 5802 9).
CHALLENGE = ("CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS",
             "SCRAM-SHA-256-PLUS", "NTLM", "GSSAPI")
WHAT_TRAVELS = {
    "PLAIN": "the password (base64 of user and password)",
    "LOGIN": "the user name and the password (base64)",
    "XOAUTH2": "the OAuth bearer token",
    "OAUTHBEARER": "the OAuth bearer token",
}


def _start(wire: Wire, mech: str) -> dict[str, str]:
    """``AUTH MECH`` without an initial response; a 334 is cancelled with "*" (RFC 4954 4)."""
    reply = wire.command(f"AUTH {mech}")
    out = {"mechanism": mech, "sent": f"AUTH {mech}", "reply": reply.one_line(),
           "code": str(reply.code)}
    if reply.code == 334:
        out["sent"] += ", then *"
        try:
            out["cancel_reply"] = wire.command("*").one_line()
        except SmtpcliError:
            wire.close()
    return out


def check(target: Target, options: SecurityOptions) -> list[Finding]:
    """One ``security.auth-before-tls`` finding, its severity by what would travel in clear:
    fail for a mechanism that sends the password (PLAIN, LOGIN), warn for a challenge-response
    one (CRAM-MD5, SCRAM) or for AUTH merely advertised."""
    if target.tls is TlsMode.IMPLICIT:
        return [Finding(id=ID, status=Status.OK, reference=REFERENCE,
                        summary="not applicable: implicit TLS, nothing is sent in clear")]
    wire: Wire | None = None
    tries: list[dict[str, str]] = []
    try:
        wire = open_session(target, options, tls=False)
        caps = wire.capabilities
        mechanisms = caps.get("AUTH", "").upper().split()
        offered = "AUTH" in caps
        # PLAIN always (some servers take it unadvertised), then every advertised mechanism.
        for mech in dict.fromkeys(["PLAIN", *mechanisms]):
            if wire.sock is None:  # it hung up after a cancelled exchange: a new connection
                wire = open_session(target, options, tls=False)
            tries.append(_start(wire, mech))
    except SmtpcliError as exc:
        if not tries:
            return [error_finding(ID, "the AUTH-before-TLS probe", exc)]
        tries.append({"mechanism": "?", "error": exc.one_line()})
    finally:
        if wire is not None:
            quit_quietly(wire)
    started = [t["mechanism"] for t in tries if t.get("code") == "334"]
    data = {"offered_before_tls": offered, "mechanisms": mechanisms,
            "starttls_offered": "STARTTLS" in caps, "tried": tries, "accepted": started,
            "credentials_sent": False}
    refused = "; ".join(f"{t['mechanism']} refused ({t['reply']})" for t in tries
                        if t.get("code") not in (None, "334"))
    fix = ("Offer AUTH only after STARTTLS (Postfix: smtpd_tls_auth_only = yes; Exim: "
           "auth_advertise_hosts = ${if def:tls_in_cipher {*}{}}) or use implicit TLS on port "
           "465 for submission (RFC 8314).")
    sent = "the probe sent only the AUTH command and '*' to cancel, no credentials"
    clear = [m for m in started if m not in CHALLENGE]
    if clear:
        mech = clear[0]
        return [Finding(
            id=ID, status=Status.FAIL, reference=REFERENCE, fix=fix, data=data,
            summary=f"AUTH {' '.join(clear)} accepted before TLS: "
                    f"{WHAT_TRAVELS.get(mech, 'the credentials')} would travel in clear text",
            detail=f"The server answered AUTH {mech} with 334 on a plaintext connection ({sent}).")]
    if started:
        return [Finding(
            id=ID, status=Status.WARN, reference=REFERENCE, fix=fix, data=data,
            summary=f"AUTH {' '.join(started)} accepted before TLS: the password does not "
                    f"travel, but the user name and a digest open to offline guessing would"
                    + (f"; {refused}" if refused else ""),
            detail=f"A challenge-response mechanism answered 334 on a plaintext connection "
                   f"({sent}). An eavesdropper sees the user name and the response to the "
                   "challenge, which can be attacked offline for weak passwords.")]
    if offered:
        return [Finding(
            id=ID, status=Status.WARN, reference=REFERENCE, fix=fix, data=data,
            summary=f"AUTH ({' '.join(mechanisms) or 'no mechanisms'}) advertised before TLS, "
                    f"though every exchange was refused: {refused}",
            detail="Clients that send the initial response with the AUTH command give the "
                   "password away before the server can refuse it.")]
    return [Finding(id=ID, status=Status.OK, reference=REFERENCE, data=data,
                    summary=f"AUTH neither advertised nor accepted before TLS: {refused}")]
