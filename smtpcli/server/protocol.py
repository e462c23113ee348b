"""The aiosmtpd session with fault injection (``CaptureSMTP``) and its handler hooks.

aiosmtpd calls ``handle_<VERB>`` hooks after its own syntax checks; faults at MAIL, RCPT and the
final dot are applied there (they see the parsed addresses). Faults at the other stages wrap the
``smtp_<VERB>`` methods; the greeting is handled in ``_handle_client``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from smtpcli.server.faults import Decision
from smtpcli.server.state import SHUTDOWN_REPLY, ServerState
from smtpcli.server.storage import StoredMessage
from smtpcli.server.trace import received_header
from smtpcli.server.transcript import SessionTranscript

_VERB_STAGE = {
    "HELO": "helo", "EHLO": "ehlo", "STARTTLS": "starttls", "AUTH": "auth", "DATA": "data",
    "RSET": "rset", "NOOP": "noop", "VRFY": "vrfy", "QUIT": "quit",
}


def tls_facts(smtp: SMTP) -> dict[str, Any] | None:
    transport = smtp.transport
    obj = transport.get_extra_info("ssl_object") if transport is not None else None
    if obj is None:
        return None
    cipher = obj.cipher()
    return {"version": obj.version(), "cipher": cipher[0] if cipher else None}


class CaptureSMTP(SMTP):
    """aiosmtpd SMTP with stage faults, tarpit, hidden extensions and graceful shutdown."""

    def __init__(self, handler: CaptureHandler, state: ServerState, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.state = state
        self.busy = False  # between DATA and the final reply: shutdown waits for it
        self.conn_id = 0
        # Kept only when --http can show it.
        self.transcript = SessionTranscript() if state.config.http_enabled else None
        for verb, method in list(self._smtp_methods.items()):
            self._smtp_methods[verb] = self._wrap(verb, _VERB_STAGE.get(verb), method)

    # -- helpers used by the handler ---------------------------------------------------------
    def ctx(self, **extra: object) -> dict[str, object]:
        session = self.session
        peer = session.peer if session is not None else None
        ctx: dict[str, object] = {
            "peer": peer[0] if isinstance(peer, tuple) else peer,
            "helo": session.host_name if session is not None else None,
            "user": _login(session),
        }
        env = self.envelope
        if env is not None:
            ctx["from"] = env.mail_from
            ctx["to"] = list(env.rcpt_tos)
        ctx.update(extra)
        return ctx

    async def apply(self, stage: str, decision: Decision) -> str | None:
        """Wait, drop or return a fault reply line (None: carry on).

        A drop closes the transport and raises CancelledError, which ends aiosmtpd's session
        loop the same way a client hanging up does.
        """
        if decision.delay_ms:
            self.state.fault_event(self, stage, "delay", ms=decision.delay_ms)
            await asyncio.sleep(decision.delay_ms / 1000)
        if decision.drop is not None:
            self.state.fault_event(self, stage, "drop")
            if self.transport is not None:
                self.transport.close()
            raise asyncio.CancelledError(f"dropped at {stage}")
        if decision.reply is not None:
            line = decision.reply.line
            self.state.fault_event(self, stage, "reply", reply=line)
            return line
        return None

    # -- aiosmtpd overrides ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        super().connection_made(transport)
        if first:
            session = self.session
            self.state.connection_opened(self, _peer_text(session.peer if session else None))

    def connection_lost(self, error: Exception | None) -> None:
        self.state.connection_closed(self)
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        try:
            if self.state.closing:
                await self.push(SHUTDOWN_REPLY)
                self._close()
                return
            reply = await self.apply("connect", self.state.faults.decide("connect", self.ctx()))
            if reply is not None and not reply.startswith("2"):
                await self._refuse_session(reply)
                return
            if reply is not None:
                self._banner = reply
            await super()._handle_client()
        except (ConnectionError, asyncio.CancelledError):
            return

    async def _refuse_session(self, reply: str) -> None:
        """A 554 greeting: answer only QUIT (RFC 5321 3.1); 421: close at once."""
        await self.push(reply)
        if reply.startswith("421"):
            self._close()
            return
        deadline = time.monotonic() + 30
        while self.transport is not None and time.monotonic() < deadline:
            try:
                line = await asyncio.wait_for(self._reader.readline(), deadline - time.monotonic())
            except (TimeoutError, ConnectionError):
                break
            if not line:
                break
            if line.strip().upper() == b"QUIT":
                await self.push("221 2.0.0 Bye")
                break
            await self.push("503 5.5.1 No SMTP service here")
        self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    _banner: str | None = None

    async def push(self, status: Any) -> None:
        if isinstance(status, str) and status.startswith("220 ") and self._banner:
            status, self._banner = self._banner, None
        if self.transcript is not None:
            self.transcript.server(status if isinstance(status, str)
                                   else bytes(status).decode("utf-8", "replace"))
        if not self.state.config.tarpit:
            await super().push(status)
            return
        data = status.encode("utf-8") if isinstance(status, str) else bytes(status)
        data += b"\r\n"
        # Tarpit: dribble the reply out a few bytes at a time over tarpit_delay_ms.
        chunks = [data[i : i + 4] for i in range(0, len(data), 4)]
        pause = self.state.config.tarpit_delay_ms / 1000 / max(len(chunks), 1)
        for chunk in chunks:
            if self.transport is None or self.transport.is_closing():
                return
            self._writer.write(chunk)
            await self._writer.drain()
            await asyncio.sleep(pause)

    def _wrap(self, verb: str, stage: str | None, method: Callable[[Any], Any]) -> Callable[[Any], Any]:
        async def wrapped(arg: Any) -> None:
            if self.transcript is not None:
                self.transcript.client(verb, arg)
            if self.state.closing and not self.busy and verb != "QUIT":
                await self.push(SHUTDOWN_REPLY)
                self._close()
                return
            if stage is not None and self.state.faults.has(stage):
                reply = await self.apply(stage, self.state.faults.decide(stage, self.ctx()))
                if reply is not None:
                    await self.push(reply)
                    return
            if verb != "DATA":
                await method(arg)
                return
            self.busy = True
            try:
                await method(arg)
            finally:
                self.busy = False
                self.state.transaction_done(self)

        return wrapped


def _login(session: Session | None) -> str | None:
    if session is None:
        return None
    login = session.login_data
    return login.decode("utf-8", "replace") if isinstance(login, bytes) else login


class CaptureHandler:
    """aiosmtpd handler hooks: EHLO post-processing, MAIL/RCPT/dot faults, greylist, storing."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.config = state.config
        self._greylist: dict[tuple[str | None, str, str], float] = {}
        self._seq = itertools.count(1)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        hide = self.config.hide
        lines = [r[4:] for r in responses]
        head, exts = lines[0], lines[1:]
        # aiosmtpd reads commands one line at a time, so pipelined groups work (RFC 2920);
        # it just does not say so.
        exts.insert(0, "PIPELINING")
        # RFC 4954 3: AUTH is advertised with its mechanisms; aiosmtpd says a bare "AUTH" when
        # every mechanism is off, which clients read as "AUTH offered, no way to use it".
        kept = [e for e in exts if e.split(" ", 1)[0].upper() not in hide
                and e.strip().upper() != "AUTH"]
        out = [head, *kept]
        return [f"250-{x}" for x in out[:-1]] + [f"250 {out[-1]}"]

    async def handle_MAIL(
        self, server: CaptureSMTP, session: Session, envelope: Envelope, address: str,
        options: list[str],
    ) -> str:
        if "8BITMIME" in self.config.hide and "BODY=8BITMIME" in options:
            return "555 5.5.4 BODY=8BITMIME not supported"
        faults = self.state.faults
        if faults.has("mail"):
            reply = await server.apply("mail", faults.decide("mail", server.ctx(**{"from": address})))
            if reply is not None and not reply.startswith("2"):
                return reply
        else:
            reply = None
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return reply or "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: CaptureSMTP, session: Session, envelope: Envelope, address: str,
        options: list[str],
    ) -> str:
        faults = self.state.faults
        reply = None
        if faults.has("rcpt"):
            reply = await server.apply("rcpt", faults.decide("rcpt", server.ctx(to=address)))
            if reply is not None and not reply.startswith("2"):
                return reply
        if self.config.greylist is not None:
            grey = self._greylisted(session, envelope.mail_from or "", address)
            if grey is not None:
                server.state.fault_event(server, "rcpt", "greylist", reply=grey)
                return grey
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return reply or "250 2.1.5 Ok"

    def _greylisted(self, session: Session, sender: str, rcpt: str) -> str | None:
        """Classic greylisting: the first try of a (client IP, sender, recipient) triplet and
        retries within ``greylist`` seconds get 451; later retries pass."""
        assert self.config.greylist is not None
        peer = session.peer[0] if isinstance(session.peer, tuple) else None
        key = (peer, sender.lower(), rcpt.lower())
        now = time.monotonic()
        first = self._greylist.setdefault(key, now)
        wait = self.config.greylist - (now - first)
        if wait > 0:
            return f"451 4.7.1 Greylisted, try again in {max(1, round(wait))} seconds"
        return None

    async def handle_DATA(self, server: CaptureSMTP, session: Session, envelope: Envelope) -> str:
        faults = self.state.faults
        reply = None
        if faults.has("dot"):
            reply = await server.apply("dot", faults.decide("dot", server.ctx()))
            if reply is not None and not reply.startswith("2"):
                return reply
        seq = next(self._seq)
        msg = StoredMessage(
            seq=seq,
            id=f"{self.state.run_id}.{seq}",
            received_at=time.time(),
            peer=_peer_text(session.peer),
            helo=session.host_name,
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            mail_options=list(envelope.mail_options),
            rcpt_options=list(envelope.rcpt_options),
            content=bytes(envelope.original_content or b""),
            tls=tls_facts(server),
            auth=_auth_facts(session),
            smtputf8=bool(envelope.smtp_utf8),
        )
        if server.transcript is not None:
            msg.transcript = server.transcript.message(msg.size)
        if self.config.received:
            msg.trace = received_header(
                helo=session.host_name, peer_ip=_peer_ip(session.peer),
                hostname=self.config.hostname, message_id=msg.id, recipients=msg.rcpt_tos,
                esmtp=bool(session.extended_smtp), tls=msg.tls is not None,
                authenticated=bool(session.authenticated), when=msg.received_at,
            )
        try:
            await self.state.store(msg, server.conn_id)
        except OSError as exc:
            # Not stored, so not accepted: the client keeps the message and retries.
            self.state.emit("error", where="store", message=str(exc))
            return "451 4.3.0 Could not store the message, try again later"
        return reply or f"250 2.0.0 Ok: queued as {msg.id}"

    async def handle_exception(self, error: Exception) -> str:
        self.state.emit("error", where="session", message=f"{type(error).__name__}: {error}")
        return "451 4.3.0 Internal server error"

    def authenticator(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = False
        user = None
        if isinstance(data, LoginPassword):
            user = data.login.decode("utf-8", "replace")
            password = data.password.decode("utf-8", "replace")
            if self.config.auth_accept_any:
                ok = True
            else:
                expected = self.config.auth_users.get(user)
                import hmac

                ok = expected is not None and hmac.compare_digest(
                    expected.encode(), password.encode()
                )
        self.state.emit("auth", peer=_peer_text(session.peer), mechanism=mechanism, user=user,
                        success=ok, conn=getattr(server, "conn_id", None))
        if ok:
            session.smtpcli_auth_mechanism = mechanism  # type: ignore[attr-defined]
            return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)


def _peer_ip(peer: Any) -> str | None:
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


def _peer_text(peer: Any) -> str | None:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else str(peer[0])
        return f"{host}:{peer[1]}"
    return None if peer is None else str(peer)


def _auth_facts(session: Session) -> dict[str, Any] | None:
    if not session.authenticated:
        return None
    return {"user": _login(session),
            "mechanism": getattr(session, "smtpcli_auth_mechanism", None)}
