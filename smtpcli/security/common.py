"""Options shared by the security probes, and the opening of a probe connection."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from smtpcli.errors import ProtocolError, SmtpReplyError
from smtpcli.results import Finding, Status
from smtpcli.security.wire import Wire
from smtpcli.smtp.reply import Reply
from smtpcli.smtp.target import Target, TlsMode


@dataclass(frozen=True)
class SecurityOptions:
    """What the probes send. Addresses default to reserved names (RFC 2606) and the server's mail
    domain. Credentials (``username``/``password``) are used only by the probes that need a
    session (smuggling on a submission server); the AUTH-before-TLS probe never sends them."""

    timeout: float = 10.0
    # How long a reply may take to count as "arrived right away" (smuggling), and how long to
    # wait for a reply that should not come at all (STARTTLS injection).
    reply_wait: float = 2.0
    ehlo_name: str | None = None  # default: an address literal of our end (RFC 5321 4.1.3)
    server_name: str | None = None  # SNI for STARTTLS / implicit TLS
    # open relay: an outside destination domain and the sender forms (nmap's smtp-open-relay)
    relay_domain: str = "example.net"
    local_domain: str | None = None  # the server's own name; default: its EHLO name
    # user enumeration: users that should exist (postmaster must: RFC 5321 4.5.1); a full
    # address is used as it is, a bare name gets "@" + the mail domain
    known_users: tuple[str, ...] = ("postmaster", "root", "admin")
    # The mail domain the server receives for (enumeration, smuggling's recipient): `--domain`,
    # the domain probed, or the domain of a recipient given; see ``mail_domain()``.
    user_domain: str | None = None
    user_domain_from: str = "given"  # where user_domain came from, for the findings' data
    # AUTH for the probes that need a session (RFC 4954); never sent by the other probes.
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # smuggling: the recipient of the test messages (one per sequence that is treated as data)
    mail_from: str = "smtpcli-probe@example.net"
    smuggling_rcpt: str | None = None  # default: postmaster@<user domain>
    smuggling_sequences: tuple[str, ...] | None = None  # names from SEQUENCES; None = all
    # End-to-end confirmation: given a probe's unique tag, how many stored messages carry it
    # (see smuggling.maildir_counter / serve's message list).
    confirm: Callable[[str], int] | None = None

    def mail_domain(self, announced: str | None = None) -> tuple[str | None, str]:
        """(domain, where it came from) for addresses at the server's mail domain: the one
        given, else that of a full address given (``--known-user``, ``--smuggling-rcpt``), else
        the parent of the name the server announces (``mx.example.org`` -> ``example.org``),
        which is a guess and said to be one."""
        if self.user_domain:
            return self.user_domain, self.user_domain_from
        for address in (*self.known_users, self.smuggling_rcpt or ""):
            if "@" in address:
                return address.rpartition("@")[2], f"the domain of {address}"
        if announced and announced.count(".") >= 2 and not announced.startswith("["):
            return announced.split(".", 1)[1], f"guessed from the server's name {announced}"
        if announced:
            return announced, "the server's name"
        return None, "unknown"

    @property
    def quiet(self) -> float:
        """How long to wait for a reply that should not come (bounded by the timeout)."""
        return max(0.05, min(self.reply_wait, self.timeout))


def random_user() -> str:
    """A local part no server knows."""
    return f"smtpcli-{secrets.token_hex(6)}"


def open_session(target: Target, options: SecurityOptions, *, tls: bool | None = None,
                 auth: bool = False) -> Wire:
    """Connect, check the greeting, EHLO; STARTTLS + EHLO again when ``tls`` is True, or when
    None and the target requires STARTTLS. With ``auth`` and credentials in the options: STARTTLS
    when offered (unless ``tls`` is False), then AUTH. The caller closes the Wire."""
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
        if auth and options.username and tls is None and "STARTTLS" in wire.capabilities:
            want_tls = True  # RFC 4954 14: credentials only inside TLS
        if want_tls and not wire.tls:
            if "STARTTLS" not in wire.capabilities:
                raise ProtocolError(f"{wire.where} does not offer STARTTLS")
            reply = wire.starttls()
            if reply.code != 220:
                raise SmtpReplyError(f"{wire.where} refused STARTTLS: {reply.one_line()}",
                                     code=reply.code, reply=reply.text)
            wire.hello()
        if auth and options.username:
            authenticate(wire, options.username, options.password or "")
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


def authenticate(wire: Wire, user: str, password: str) -> None:
    """AUTH with the strongest advertised password mechanism (RFC 4954); the exchange shows as
    ``[redacted]`` in the transcript. A refusal raises ``SmtpReplyError``."""
    from smtpcli.smtp.auth import Credentials, _b64, _initial, _respond, choose_mechanism

    creds = Credentials(user, password)
    mech = choose_mechanism(wire.capabilities.get("AUTH", "").split(), None, creds)
    initial = _initial(mech, creds)
    line = f"AUTH {mech}" if initial is None else f"AUTH {mech} {_b64(initial)}"
    reply = _secret_command(wire, line, f"AUTH {mech} [redacted]")
    step = 0
    while reply.code == 334 and step < 5:
        challenge = base64.b64decode(reply.text.strip() or b"", validate=False)
        reply = _secret_command(wire, _b64(_respond(mech, creds, challenge, step)), "[redacted]")
        step += 1
    if reply.code != 235:
        raise SmtpReplyError(f"authentication as {user!r} with {mech} failed at {wire.where}: "
                             f"{reply.one_line()}", code=reply.code if reply.code >= 400 else 535,
                             reply=reply.text)


def _secret_command(wire: Wire, line: str, shown: str) -> Reply:
    wire.mark()
    wire._log("sent", shown)
    wire.send(line.encode("utf-8") + b"\r\n", show=False)
    return wire.reply().reply
