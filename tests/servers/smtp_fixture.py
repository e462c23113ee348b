"""An in-process aiosmtpd server on a free loopback port, in a thread, that records what arrives.

Modes: ``plain``, ``starttls`` (STARTTLS offered) and ``implicit`` (TLS from the first byte).
AUTH mechanisms: PLAIN, LOGIN, CRAM-MD5 (password table) and XOAUTH2 (token table).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .certs import CertFiles, TlsCerts

Mode = Literal["plain", "starttls", "implicit"]


@dataclass
class ReceivedMessage:
    """One message accepted by the server (after the final DATA reply)."""

    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    rcpt_options: list[str]
    content: bytes  # exactly as received, dot-unstuffed, without the final ".\r\n"
    tls: bool
    auth_user: str | None
    helo: str | None
    peer: Any
    smtp_utf8: bool


def _is_tls(server: SMTP) -> bool:
    transport = server.transport
    return server._tls_protocol is not None or (
        transport is not None and transport.get_extra_info("ssl_object") is not None
    )


@dataclass
class RecordingHandler:
    """aiosmtpd handler: records messages, rejects configured senders/recipients, does AUTH."""

    users: dict[str, str] = field(default_factory=dict)
    oauth_tokens: dict[str, str] = field(default_factory=dict)
    reject_rcpt: dict[str, str] = field(default_factory=dict)
    reject_mail: dict[str, str] = field(default_factory=dict)
    data_response: str = "250 2.0.0 Ok: queued"
    messages: list[ReceivedMessage] = field(default_factory=list)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Reject senders listed in `reject_mail`, else accept."""
        if address.lower() in self.reject_mail:
            return self.reject_mail[address.lower()]
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Reject recipients listed in `reject_rcpt`, else accept."""
        if address.lower() in self.reject_rcpt:
            return self.reject_rcpt[address.lower()]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Record the message; reply with `data_response`."""
        content = envelope.original_content or b""
        login = getattr(session.auth_data, "login", None)
        self.messages.append(
            ReceivedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                mail_options=list(envelope.mail_options),
                rcpt_options=list(envelope.rcpt_options),
                content=bytes(content),
                tls=_is_tls(server),
                auth_user=login.decode() if isinstance(login, bytes) else login,
                helo=session.host_name,
                peer=session.peer,
                smtp_utf8=envelope.smtp_utf8,
            )
        )
        return self.data_response

    def authenticator(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """Check PLAIN/LOGIN credentials against `users`."""
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            if user in self.users and self.users[user] == password:
                return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)

    async def auth_CRAM__MD5(self, server: SMTP, args: list[str]) -> AuthResult:
        """CRAM-MD5 (RFC 2195) against `users`."""
        challenge = f"<{os.getpid()}.{time.time_ns()}@{server.hostname}>".encode()
        reply = await server.challenge_auth(challenge)
        if not isinstance(reply, bytes):
            return AuthResult(success=False, handled=True)
        user, _, digest = reply.decode(errors="replace").rpartition(" ")
        password = self.users.get(user)
        if password is not None:
            expected = hmac.new(password.encode(), challenge, "md5").hexdigest()
            if hmac.compare_digest(expected, digest.lower()):
                return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        return AuthResult(success=False, handled=False)

    async def _bearer_blob(self, server: SMTP, args: list[str]) -> bytes | None:
        """The client's initial response (inline or after an empty 334); None: already answered."""
        if len(args) > 1:
            try:
                return base64.b64decode(args[1], validate=True)
            except ValueError:
                await server.push("501 5.5.2 Can't decode base64")
                return None
        reply = await server.challenge_auth(b"", encode_to_b64=False)
        return reply if isinstance(reply, bytes) else None

    async def _bearer_result(self, server: SMTP, user: str, auth: str, error: dict[str, str]) -> AuthResult:
        if user in self.oauth_tokens and auth == f"Bearer {self.oauth_tokens[user]}":
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        await server.challenge_auth(json.dumps(error).encode())  # the client answers, then 535
        return AuthResult(success=False, handled=False)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """XOAUTH2 (Google/Microsoft style): ``user=USER^Aauth=Bearer TOKEN^A^A``."""
        blob = await self._bearer_blob(server, args)
        if blob is None:
            return AuthResult(success=False, handled=True)
        fields = dict(p.split("=", 1) for p in blob.decode(errors="replace").split("\x01") if "=" in p)
        return await self._bearer_result(server, fields.get("user", ""), fields.get("auth", ""),
                                         {"status": "401", "schemes": "Bearer", "scope": "mail"})

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        """OAUTHBEARER (RFC 7628 3.1): ``n,a=USER,^Ahost=..^Aport=..^Aauth=Bearer TOKEN^A^A``."""
        blob = await self._bearer_blob(server, args)
        if blob is None:
            return AuthResult(success=False, handled=True)
        gs2, _, rest = blob.decode(errors="replace").partition("\x01")
        user = next((p[2:] for p in gs2.split(",") if p.startswith("a=")), "")
        fields = dict(p.split("=", 1) for p in rest.split("\x01") if "=" in p)
        # RFC 7628 3.2.2: the error is a challenge the client answers with ^A.
        return await self._bearer_result(server, user, fields.get("auth", ""),
                                         {"status": "invalid_token", "scope": "mail"})


class _LoopbackController(Controller):
    """Controller listening on a socket bound up front to a free port (no races)."""

    def __init__(self, handler: Any, sock: socket.socket, **kwargs: Any) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **kwargs)
        self._sock = sock

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


@dataclass
class RunningSmtpServer:
    """A started server. `messages` fills as mail arrives; `stop()` is idempotent."""

    mode: Mode
    host: str
    port: int
    handler: RecordingHandler
    cert: CertFiles | None
    controller: Controller

    @property
    def messages(self) -> list[ReceivedMessage]:
        return self.handler.messages

    @property
    def ca_path(self) -> str | None:
        return str(self.cert.ca_path) if self.cert else None

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def stop(self) -> None:
        if self.controller._thread is not None:
            self.controller.stop(no_assert=True)


def start_smtp_server(
    mode: Mode = "plain",
    users: dict[str, str] | None = None,
    *,
    cert: CertFiles | None = None,
    oauth_tokens: dict[str, str] | None = None,
    auth_require_tls: bool | None = None,
    auth_required: bool = False,
    require_starttls: bool = False,
    exclude_mechanisms: Iterable[str] = (),
    reject_rcpt: dict[str, str] | None = None,
    reject_mail: dict[str, str] | None = None,
    data_response: str = "250 2.0.0 Ok: queued",
    host: str = "127.0.0.1",
    hostname: str = "mail.example.test",
    client_ca: str | None = None,
    **smtp_kwargs: Any,
) -> RunningSmtpServer:
    """Start a server. `auth_require_tls` defaults to True for starttls, False otherwise."""
    if mode not in ("plain", "starttls", "implicit"):
        raise ValueError(f"unknown mode {mode!r}")
    if mode != "plain" and cert is None:
        raise ValueError(f"mode {mode!r} needs a cert")
    handler = RecordingHandler(
        users=dict(users or {}),
        oauth_tokens=dict(oauth_tokens or {}),
        reject_rcpt={k.lower(): v for k, v in (reject_rcpt or {}).items()},
        reject_mail={k.lower(): v for k, v in (reject_mail or {}).items()},
        data_response=data_response,
    )
    kwargs: dict[str, Any] = {
        "server_hostname": hostname,
        "enable_SMTPUTF8": True,
        "authenticator": handler.authenticator,
        "auth_required": auth_required,
        # aiosmtpd does not see implicit TLS as TLS, so never demand it there.
        "auth_require_tls": (mode == "starttls") if auth_require_tls is None else auth_require_tls,
        "auth_exclude_mechanism": list(exclude_mechanisms),
        "ready_timeout": 5.0,
        **smtp_kwargs,
    }
    if mode == "implicit":
        kwargs["auth_require_tls"] = False
    if not users and not oauth_tokens:
        kwargs["auth_exclude_mechanism"] += ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2",
                                             "OAUTHBEARER"]
    elif not oauth_tokens:
        kwargs["auth_exclude_mechanism"] += ["XOAUTH2", "OAUTHBEARER"]
    elif not users:
        kwargs["auth_exclude_mechanism"] += ["PLAIN", "LOGIN", "CRAM-MD5"]
    context = cert.server_context() if cert is not None else None
    if context is not None and client_ca:
        # Demand a client certificate signed by `client_ca` (mutual TLS).
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    if mode == "starttls":
        kwargs["tls_context"] = context
        kwargs["require_starttls"] = require_starttls
    elif mode == "implicit":
        kwargs["ssl_context"] = context
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    controller = _LoopbackController(handler, sock, **kwargs)
    controller.start()
    return RunningSmtpServer(mode, host, sock.getsockname()[1], handler, cert, controller)


SmtpServerFactory = Callable[..., RunningSmtpServer]


def client_context(server: RunningSmtpServer) -> ssl.SSLContext:
    """A verifying client context for `server` (trusting its CA)."""
    return ssl.create_default_context(cafile=server.ca_path)


@pytest.fixture
def smtp_server(tls_certs: TlsCerts) -> Iterator[SmtpServerFactory]:
    """Factory: ``smtp_server(mode="plain", users=None, **kw)``; every server stops at test end.

    TLS modes default to ``cert=tls_certs.valid``; see `start_smtp_server` for the options.
    """
    started: list[RunningSmtpServer] = []

    def factory(
        mode: Mode = "plain", users: dict[str, str] | None = None, **kw: Any
    ) -> RunningSmtpServer:
        if mode != "plain":
            kw.setdefault("cert", tls_certs.valid)
        server = start_smtp_server(mode, users, **kw)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()
