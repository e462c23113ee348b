"""Open relay: does the server accept recipients in outside domains from us?

The address forms are the classic ones nmap's smtp-open-relay tries (plain, source-routed,
percent hack, bang paths, quoted local parts). The probe stops after RCPT and sends RSET between
tries (RFC 5321 4.1.1.5): no message is ever sent. A 2xx to RCPT means the server would relay.
A server trusting our address (Postfix ``mynetworks``) relays for us by design; the finding
says so, because only a probe from an outside address proves an open relay to the world.
"""

from __future__ import annotations

from typing import Any

from smtpcli.errors import NetworkTimeout, ProtocolError, SmtpcliError
from smtpcli.results import Finding, Status
from smtpcli.security.common import SecurityOptions, error_finding, open_session, quit_quietly
from smtpcli.security.wire import Wire
from smtpcli.smtp.target import Target

ID = "security.open-relay"
USER = "relaytest"


def relay_forms(to: str, server: str, ip: str) -> list[tuple[str, str]]:
    """(MAIL FROM, RCPT TO) address pairs; ``to`` is the outside domain, ``server`` the
    server's name, ``ip`` its address (used as an address literal, RFC 5321 4.1.3)."""
    lit = f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"
    sender = f"antispam@{lit}"
    pairs = [
        ("", f"{USER}@{to}"),
        (f"antispam@{to}", f"{USER}@{to}"),
        (f"antispam@{server}", f"{USER}@{to}"),
        (sender, f"{USER}@{to}"),
    ]
    rcpts = [
        f"{USER}%{to}@{lit}",               # percent hack
        f"{USER}%{to}@{server}",
        f'"{USER}@{to}"',                   # quoted local part holding the whole address
        f'"{USER}%{to}"',
        f"{USER}@{to}@{lit}",               # two at-signs
        f'"{USER}@{to}"@{lit}',
        f"{USER}@{to}@{server}",
        f"@{lit}:{USER}@{to}",              # source route (RFC 5321 4.1.2, C)
        f"@{server}:{USER}@{to}",
        f"{to}!{USER}",                     # UUCP bang path
        f"{to}!{USER}@{lit}",
        f"{to}!{USER}@{server}",
    ]
    pairs.extend((sender, rcpt) for rcpt in rcpts)
    return pairs


def _try(wire: Wire, mail: str, rcpt: str) -> dict[str, Any]:
    result: dict[str, Any] = {"mail": mail, "rcpt": rcpt}
    reply = wire.command(f"MAIL FROM:<{mail}>")
    result["mail_reply"] = reply.one_line()
    if reply.code // 100 == 2:
        reply = wire.command(f"RCPT TO:<{rcpt}>")
        result["rcpt_reply"] = reply.one_line()
        result["relayed"] = reply.code // 100 == 2
    else:
        result["relayed"] = False
    result["code"] = reply.code
    if reply.code == 421:  # the server is closing (RFC 5321 3.8): reconnect for the next form
        wire.close()
        return result
    try:
        wire.command("RSET")
    except (ProtocolError, NetworkTimeout):
        wire.close()  # it hung up after answering (Exim, at its syntax error limit)
    return result


def _outcome(result: dict[str, Any]) -> str:
    """How one form ended: relayed, refused, syntax (a 501: the server does not take the
    address form at all, which refuses it too) or closed (the server hung up)."""
    if result.get("relayed"):
        return "relayed"
    if result.get("closed"):
        return "closed"
    return "syntax" if result.get("code") == 501 else "refused"


def check(target: Target, options: SecurityOptions) -> list[Finding]:
    """One ``security.open-relay`` finding: fail when any form was accepted at RCPT.

    Every form is tried: a 5xx (501 "domain literals not allowed" included) refuses that form,
    and a server that hangs up (Exim drops a client after three syntax errors) is reconnected
    to, the form counting as refused. Only a server that cannot be reached again stops it.
    """
    results: list[dict[str, Any]] = []
    wire: Wire | None = None
    reconnects = 0
    try:
        wire = open_session(target, options)
        peer = wire.sock.getpeername()[0] if wire.sock else target.host
        server = options.local_domain or wire.announced_name() or target.host
        for mail, rcpt in relay_forms(options.relay_domain, server, peer):
            if wire.sock is None:  # the server hung up: carry on with a new connection
                wire = open_session(target, options)
                reconnects += 1
            try:
                outcome = _try(wire, mail, rcpt)
            except (ProtocolError, NetworkTimeout) as exc:
                # The server closed (or stopped answering) on this form: a refusal of it.
                wire.close()
                outcome = {"mail": mail, "rcpt": rcpt, "relayed": False, "closed": True,
                           "detail": exc.one_line()}
            outcome["outcome"] = _outcome(outcome)
            results.append(outcome)
            if outcome.get("code") == 530 and "rcpt_reply" not in outcome:
                break  # authentication required before MAIL: nothing relays without it
    except SmtpcliError as exc:
        if not results:
            return [error_finding(ID, "the open relay probe", exc)]
        results.append({"error": exc.one_line()})
    finally:
        if wire is not None:
            quit_quietly(wire)
    tried = [r for r in results if "mail" in r]
    accepted = [r for r in tried if r.get("relayed")]
    counts = {k: sum(1 for r in tried if r["outcome"] == k)
              for k in ("relayed", "refused", "syntax", "closed")}
    data = {"tried": len(tried), "accepted": accepted, "outcomes": counts,
            "reconnects": reconnects,
            "results": results, "outside_domain": options.relay_domain,
            "forms": [f"MAIL FROM:<{r['mail']}> RCPT TO:<{r['rcpt']}> -> {r['outcome']}"
                      for r in tried]}
    if accepted:
        return [Finding(
            id=ID, status=Status.FAIL,
            summary=f"open relay: {len(accepted)} of {len(tried)} address forms for "
                    f"{options.relay_domain} accepted at RCPT",
            detail="The server accepted recipients in a domain it is not responsible for, from "
                   "this client without authentication. If this client's address is in the "
                   "server's trusted networks (Postfix mynetworks) this is by design; from any "
                   "other address it lets spammers send through the server.",
            reference="RFC 5321 3.9; RFC 2505",
            fix="Relay only for authenticated clients and trusted networks "
                "(Postfix: smtpd_relay_restrictions = permit_mynetworks, "
                "permit_sasl_authenticated, reject_unauth_destination).",
            data=data,
        )]
    errored = [r for r in results if "error" in r]
    if errored:
        return [Finding(id=ID, status=Status.ERROR, reference="RFC 5321 3.9", data=data,
                        summary=f"open relay probe incomplete after {len(tried)} forms, none "
                                f"accepted: {errored[0]['error']}")]
    if tried and tried[-1].get("code") == 530 and len(tried) == 1:
        return [Finding(id=ID, status=Status.OK, reference="RFC 5321 3.9", data=data,
                        summary=f"no open relay: MAIL needs authentication "
                                f"({tried[0]['mail_reply']})")]
    labels = {"refused": "refused", "syntax": "rejected as bad syntax (501)",
              "closed": "answered by hanging up"}
    how = ", ".join(f"{n} {labels[k]}" for k, n in counts.items() if n and k != "relayed")
    closed = f"; reconnected {reconnects} times after the server hung up" if reconnects else ""
    return [Finding(id=ID, status=Status.OK, reference="RFC 5321 3.9", data=data,
                    summary=f"no open relay: all {len(tried)} address forms for "
                            f"{options.relay_domain} refused: {how}{closed}")]
