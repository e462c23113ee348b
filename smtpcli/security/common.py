"""Options shared by the security probes, and the opening of a probe connection."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from smtpcli.errors import ProtocolError, SmtpReplyError
from smtpcli.results import Finding, Status
from smtpcli.security.wire import Wire
from smtpcli.smtp.target import Target, TlsMode


@dataclass(frozen=True)
class SecurityOptions:
    """What the probes send. Addresses default to reserved names (RFC 2606) and the server's own
    name; nothing here is a secret (the AUTH probe never sends credentials)."""

    timeout: float = 10.0
    # How long a reply may take to count as "arrived right away" (smuggling), and how long to
    # wait for a reply that should not come at all (STARTTLS injection).
    reply_wait: float = 2.0
    ehlo_name: str | None = None  # default: an address literal of our end (RFC 5321 4.1.3)
    server_name: str | None = None  # SNI for STARTTLS / implicit TLS
    # open relay: an outside destination domain and the sender forms (nmap's smtp-open-relay)
    relay_domain: str = "example.net"
    local_domain: str | None = None  # the server's own domain; default: its EHLO name
    # user enumeration: users that should exist (postmaster must: RFC 5321 4.5.1)
    known_users: tuple[str, ...] = ("postmaster", "root", "admin")
    user_domain: str | None = None  # domain for RCPT enumeration; default: local_domain
    # smuggling: the recipient of the test messages (one per sequence that is treated as data)
    mail_from: str = "smtpcli-probe@example.net"
    smuggling_rcpt: str | None = None  # default: postmaster@<user domain>
    smuggling_sequences: tuple[str, ...] | None = None  # names from SEQUENCES; None = all
    # End-to-end confirmation: given a probe's unique tag, how many stored messages carry it
    # (see smuggling.maildir_counter / serve's message list).
    confirm: Callable[[str], int] | None = None

    @property
    def quiet(self) -> float:
        """How long to wait for a reply that should not come (bounded by the timeout)."""
        return max(0.05, min(self.reply_wait, self.timeout))


def random_user() -> str:
    """A local part no server knows."""
    return f"smtpcli-{secrets.token_hex(6)}"


def open_session(target: Target, options: SecurityOptions, *, tls: bool | None = None) -> Wire:
    """Connect, check the greeting, EHLO; STARTTLS + EHLO again when ``tls`` is True, or when
    None and the target requires STARTTLS. The caller closes the Wire."""
    wire = Wire(target, timeout=options.timeout, ehlo_name=options.ehlo_name,
                server_name=options.server_name)
    try:
        banner = wire.open()
        if banner.code != 220:
            raise SmtpReplyError(f"{wire.where} greeted with {banner.one_line()}",
                                 code=banner.code, reply=banner.text)
        ehlo = wire.hello()
        if ehlo.code != 250:
            raise SmtpReplyError(f"{wire.where} refused EHLO/HELO: {ehlo.one_line()}",
                                 code=ehlo.code, reply=ehlo.text)
        want_tls = (target.tls is TlsMode.STARTTLS) if tls is None else tls
        if want_tls and not wire.tls:
            if "STARTTLS" not in wire.capabilities:
                raise ProtocolError(f"{wire.where} does not offer STARTTLS")
            reply = wire.starttls()
            if reply.code != 220:
                raise SmtpReplyError(f"{wire.where} refused STARTTLS: {reply.one_line()}",
                                     code=reply.code, reply=reply.text)
            wire.hello()
    except BaseException:
        wire.close()
        raise
    return wire


def quit_quietly(wire: Wire) -> None:
    """QUIT without caring about the answer (bounded by a short wait)."""
    if wire.sock is None:
        return
    try:
        wire.mark()
        wire.send(b"QUIT\r\n")
        wire.poll(min(wire.timeout, 1.0))
    except Exception:  # noqa: BLE001 - the probe's result is already known
        pass
    wire.close()


def error_finding(id: str, what: str, exc: Exception) -> Finding:
    """The probe could not complete: status error, never a silent ok."""
    message = exc.one_line() if hasattr(exc, "one_line") else str(exc)
    return Finding(id=id, status=Status.ERROR, summary=f"{what} could not complete: {message}")
