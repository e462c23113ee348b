"""Run a capture server: bind, accept, store, stop on count/time/signal, shut down gracefully.

``CaptureServer`` is the asyncio API (``await start()``, ``await wait()``); ``run_in_thread``
starts one in a background thread for in-process users (tests, ``demo``). Events (listening,
connect, message, fault, auth, disconnect, error, shutdown) go to an ``on_event`` callback as
JSON-safe dicts; the library never prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from smtpcli.errors import IncompleteError
from smtpcli.server.config import ServeConfig
from smtpcli.server.state import EventSink, ServerState, ServeSummary
from smtpcli.server.storage import StoredMessage
from smtpcli.server.tls import ServerTls, load_tls, self_signed


def _quiet_aiosmtpd() -> None:
    # aiosmtpd logs every session at INFO and tracebacks at ERROR; events replace both.
    log = logging.getLogger("mail.log")
    log.setLevel(logging.CRITICAL)
    log.propagate = False


class CaptureServer:
    """One capture server on an event loop."""

    def __init__(self, config: ServeConfig, on_event: EventSink | None = None) -> None:
        config.validate()
        self.config = config
        self.state = ServerState(config, on_event)
        self.tls: ServerTls | None = None
        self._server: asyncio.AbstractServer | None = None
        self._started = 0.0
        self.port = config.port
        self.host = config.host
        self.http: Any = None  # smtpcli.server.http.app.HttpSide with --http

    @property
    def messages(self) -> list[StoredMessage]:
        return self.state.memory.messages if self.state.memory is not None else []

    @property
    def summary(self) -> ServeSummary:
        return self.state.summary

    def _factory(self) -> Any:
        from smtpcli.server.protocol import CaptureHandler, CaptureSMTP

        c = self.config
        handler = CaptureHandler(self.state)
        auth_off = ["PLAIN", "LOGIN"] if not c.auth_enabled or "AUTH" in c.hide else []
        starttls_ctx = None
        if self.tls is not None and not c.implicit_tls and "STARTTLS" not in c.hide:
            starttls_ctx = self.tls.context
        kwargs: dict[str, Any] = {
            "hostname": c.hostname,
            "ident": "smtpcli serve",
            "data_size_limit": c.max_size or None,
            "enable_SMTPUTF8": c.smtputf8 and "SMTPUTF8" not in c.hide,
            "tls_context": starttls_ctx,
            "require_starttls": c.require_starttls,
            "timeout": c.idle_timeout,
            "auth_required": c.auth_required,
            # AUTH only after STARTTLS when STARTTLS is on offer (RFC 4954 4); aiosmtpd does not
            # see implicit TLS as TLS, so it must not demand it there.
            "auth_require_tls": starttls_ctx is not None and not c.auth_plaintext,
            "auth_exclude_mechanism": auth_off,
            "authenticator": handler.authenticator,
        }
        if "SIZE" in c.hide:
            kwargs["data_size_limit"] = None

        def make() -> CaptureSMTP:
            return CaptureSMTP(handler, self.state, **kwargs)

        return make

    async def start(self) -> None:
        """Load TLS, open stores, bind and start accepting; emits ``listening``."""
        import warnings

        _quiet_aiosmtpd()
        warnings.filterwarnings("ignore", module="aiosmtpd")
        c = self.config
        if c.tls_self_signed:
            self.tls = self_signed(c.hostname)
        elif c.tls_cert:
            self.tls = load_tls(c.tls_cert, c.tls_key)
        self.state.open_stores()
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                self._factory(), host=c.host, port=c.port,
                ssl=self.tls.context if (self.tls and c.implicit_tls) else None,
                reuse_address=True,
            )
        except OSError as exc:
            self.state.close_stores()
            raise IncompleteError(
                f"cannot listen on {c.host}:{c.port}: {exc.strerror or exc}",
                hint="pick another port with --listen HOST:PORT (port 0 picks a free one)",
            ) from None
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]
        self._started = time.monotonic()
        if c.http_enabled:
            await self._start_http()
        self.state.emit("listening", **self.listening_facts())

    async def _start_http(self) -> None:
        """The HTTP API and inbox on this loop (aiohttp is imported only with --http)."""
        from smtpcli.server.http.app import HttpSide
        from smtpcli.server.mailbox import Mailbox

        self.state.mailbox = Mailbox()
        await asyncio.to_thread(self._load_existing)
        self.http = HttpSide(self.state, self.config.http_host, self.config.http_port or 0)
        try:
            await self.http.start()
        except BaseException:
            self.http = None
            if self._server is not None:
                self._server.close()
                self._server = None
            self.state.close_stores()
            raise

    def _load_existing(self) -> None:
        """What the Maildir/mbox already held when serve started, so the API lists it too."""
        from smtpcli.server.mailbox import load_maildir, load_mbox

        c, box = self.config, self.state.mailbox
        # One store is enough (with both, each holds the same messages); Maildir can delete.
        existing = load_maildir(c.maildir) if c.maildir else load_mbox(c.mbox) if c.mbox else []
        for msg in existing:
            box.add(msg)
            box.set_read(True, [msg.id])  # seen in an earlier run

    def listening_facts(self) -> dict[str, Any]:
        c = self.config
        host = f"[{self.host}]" if ":" in self.host else self.host
        facts: dict[str, Any] = {
            "address": f"{host}:{self.port}", "host": self.host, "port": self.port,
            "hostname": c.hostname,
            "tls": ("implicit" if c.implicit_tls else "starttls") if self.tls else None,
            "require_starttls": c.require_starttls,
            "auth": ("accept-any" if c.auth_accept_any else "users") if c.auth_enabled else None,
            "max_size": c.max_size, "smtputf8": c.smtputf8 and "SMTPUTF8" not in c.hide,
            "hidden": sorted(c.hide),
            "storage": [s.name for s in self.state.stores],
            "faults": bool(self.state.faults) or c.greylist is not None or c.tarpit,
        }
        if self.http is not None:
            facts["http"] = self.http.url
        if self.tls is not None:
            facts["certificate"] = {
                "sha256": self.tls.fingerprint_sha256, "subject": self.tls.subject,
                "self_signed": self.tls.self_signed,
            }
        return facts

    def stop(self, reason: str = "stopped") -> None:
        self.state.stop(reason)

    async def wait(self) -> ServeSummary:
        """Serve until --count, --exit-after or stop(); then shut down gracefully."""
        c = self.config
        if c.count is not None and c.count <= self.summary.messages:
            self.state.stop("count")
        try:
            if c.exit_after is not None:
                try:
                    await asyncio.wait_for(self.state.done.wait(), c.exit_after)
                except TimeoutError:
                    self.state.stop("exit-after")
            else:
                await self.state.done.wait()
        finally:
            await self.shutdown()
        return self.summary

    async def shutdown(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()  # stop accepting; sessions stay up for the grace period
        await self.state.drain(self.config.grace)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 1.0)
        if self.http is not None:
            await self.http.stop()
        self.state.close_stores()
        self.summary.elapsed = time.monotonic() - self._started
        if not self.summary.reason:
            self.summary.reason = "stopped"


@dataclass
class ThreadedServer:
    """A CaptureServer running in a background thread (``stop()`` is idempotent)."""

    server: CaptureServer
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def messages(self) -> list[StoredMessage]:
        return self.server.messages

    def stop(self, timeout: float = 10.0) -> ServeSummary:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.server.stop, "stopped")
            self.thread.join(timeout)
        return self.server.summary


def run_in_thread(config: ServeConfig, on_event: EventSink | None = None) -> ThreadedServer:
    """Start a server in a daemon thread and return once it listens (errors re-raised)."""
    server = CaptureServer(config, on_event)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        try:
            await server.start()
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)
            ready.set()
            return
        ready.set()
        await server.wait()

    def target() -> None:
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()

    thread = threading.Thread(target=target, name="smtpcli-serve", daemon=True)
    thread.start()
    ready.wait(30)
    if failure:
        raise failure[0]
    return ThreadedServer(server, loop, thread)


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on ``host`` (for callers that must know it up front)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
