"""An asyncio SMTP load generator (``smtpcli bench``): many messages over few connections.

Each of ``concurrency`` workers keeps one connection open and sends message after message on it
(RFC 5321 3.3: a new MAIL starts a new transaction after the final reply), optionally pipelining
MAIL/RCPT/DATA (RFC 2920). Replies are parsed in a plain ``asyncio.Protocol`` with one future per
reply, which keeps the per-command cost low enough to hold up against Postfix's smtp-source.

Counts always add up: ``attempted == accepted + rejected + failed``, where *rejected* is a
4xx/5xx reply that ended the transaction and *failed* is a network/TLS/timeout problem.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import ssl
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

STAGES = ("connect", "banner", "ehlo", "tls", "auth", "mail", "rcpt", "data", "dot", "message")


@dataclass
class BenchConfig:
    """What to send where. ``tls``: none, starttls, implicit or opportunistic."""

    host: str
    port: int
    tls: str = "opportunistic"
    server_hostname: str | None = None  # SNI / certificate name; default: host
    cafile: str | None = None
    insecure: bool = False
    messages: int | None = 1000
    duration: float | None = None
    concurrency: int = 10
    size: int = 1024
    rate: float | None = None
    pipelining: bool = False
    recipients: int = 1
    user: str | None = None
    password: str | None = None
    mechanism: str = "PLAIN"
    helo: str = "bench.smtpcli.test"
    mail_from: str = "bench@smtpcli.test"
    rcpt_to: str = "sink@smtpcli.test"
    per_connection: int = 0  # messages per connection; 0 = as many as possible
    timeout: float = 30.0


class Rejected(Exception):
    """A reply that ends the transaction (or the session, when ``fatal``)."""

    def __init__(self, stage: str, code: int, text: str, fatal: bool = False) -> None:
        super().__init__(f"{stage}: {text}")
        self.stage, self.code, self.text, self.fatal = stage, code, text, fatal


class Failure(Exception):
    """A network-level problem: ``kind`` is connect, timeout, closed, tls or protocol."""

    def __init__(self, kind: str, stage: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.kind, self.stage, self.message = kind, stage, message


class _Client(asyncio.Protocol):
    """Reply parser: complete replies go to waiting futures in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._lines: list[bytes] = []
        self._ready: deque[tuple[int, bytes]] = deque()
        self._waiters: deque[asyncio.Future[tuple[int, bytes]]] = deque()
        self._lost: BaseException | None = None
        self.stage = "connect"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            line = bytes(buf[start : end + 1])
            start = end + 1
            # RFC 5321 4.2.1: "xyz-" continues a multiline reply, "xyz " (or "xyz") ends it.
            if len(line) > 3 and line[3:4] == b"-":
                self._lines.append(line)
                continue
            if self._lines:
                self._lines.append(line)
                text = b"".join(self._lines)
                self._lines = []
            else:
                text = line
            code = int(line[:3]) if line[:3].isdigit() else 0
            if self._waiters:
                fut = self._waiters.popleft()
                if not fut.done():
                    fut.set_result((code, text))
            else:
                self._ready.append((code, text))
        if start:
            del buf[:start]
        if len(buf) > 65536:
            self._fail(Failure("protocol", self.stage, "reply line longer than 64 KiB"))

    def _fail(self, exc: BaseException) -> None:
        self._lost = exc
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lost is None:
            self._fail(Failure("closed", self.stage, f"connection closed by the server{f' ({exc})' if exc else ''}"))

    def eof_received(self) -> bool | None:
        return None

    def write(self, data: bytes) -> None:
        if self._lost is not None:
            raise self._lost
        assert self.transport is not None
        self.transport.write(data)

    async def reply(self) -> tuple[int, bytes]:
        if self._ready:
            return self._ready.popleft()
        if self._lost is not None:
            raise self._lost
        fut: asyncio.Future[tuple[int, bytes]] = self.loop.create_future()
        self._waiters.append(fut)
        handle = self.loop.call_later(self.timeout, _expire, fut, self.stage)
        try:
            return await fut
        finally:
            handle.cancel()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _expire(fut: asyncio.Future[Any], stage: str) -> None:
    if not fut.done():
        fut.set_exception(Failure("timeout", stage, "no reply within the timeout"))


def client_context(cafile: str | None, insecure: bool) -> ssl.SSLContext:
    """A verifying client context (system CAs or ``cafile``); ``insecure`` skips checks."""
    if insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=cafile)


@dataclass
class BenchResult:
    """Counters and latency samples of one run."""

    attempted: int = 0
    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    rcpt_accepted: int = 0
    rcpt_rejected: int = 0
    connections: int = 0
    connect_failures: int = 0
    bytes_sent: int = 0
    elapsed: float = 0.0
    pipelining_used: bool = False
    tls: dict[str, Any] | None = None
    samples: dict[str, array[float]] = field(default_factory=lambda: {s: array("d") for s in STAGES})
    errors: Counter[tuple[str, int]] = field(default_factory=Counter)
    error_samples: dict[tuple[str, int], str] = field(default_factory=dict)
    failures: Counter[tuple[str, str]] = field(default_factory=Counter)
    failure_samples: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.accepted / self.elapsed if self.elapsed > 0 else 0.0

    def latency(self) -> dict[str, dict[str, float | int]]:
        out: dict[str, dict[str, float | int]] = {}
        for stage in STAGES:
            values = sorted(self.samples[stage])
            if values:
                out[stage] = {"count": len(values), **{
                    k: round(percentile(values, p) * 1000, 3)
                    for k, p in (("p50", 50), ("p90", 90), ("p99", 99))
                }, "max": round(values[-1] * 1000, 3),
                    "mean": round(sum(values) / len(values) * 1000, 3)}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": {"attempted": self.attempted, "accepted": self.accepted,
                         "rejected": self.rejected, "failed": self.failed},
            "recipients": {"accepted": self.rcpt_accepted, "rejected": self.rcpt_rejected},
            "connections": {"opened": self.connections, "failed": self.connect_failures},
            "elapsed_s": round(self.elapsed, 3),
            "messages_per_s": round(self.rate, 1),
            "bytes_sent": self.bytes_sent,
            "pipelining_used": self.pipelining_used,
            "tls": self.tls,
            "latency_ms": self.latency(),
            "errors": [
                {"stage": stage, "code": code, "count": n, "sample": self.error_samples[(stage, code)]}
                for (stage, code), n in sorted(self.errors.items())
            ],
            "failures": [
                {"stage": stage, "kind": kind, "count": n,
                 "sample": self.failure_samples[(stage, kind)]}
                for (stage, kind), n in sorted(self.failures.items())
            ],
        }


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[min(int(rank), len(sorted_values)) - 1]


_MSGID = b"Message-ID: <%010d.bench@smtpcli.test>\r\n"


def _body(size: int, mail_from: str, rcpts: list[str]) -> tuple[bytes, bytes]:
    """(header prefix before the Message-ID, rest of the message up to and including "\\r\\n.\\r\\n").

    Lines never start with "." so no dot-stuffing is needed (RFC 5321 4.5.2).
    """
    head = (
        f"From: <{mail_from}>\r\nTo: {', '.join(f'<{r}>' for r in rcpts)}\r\n"
        f"Subject: smtpcli bench\r\nDate: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
    ).encode()
    mid_len = len(_MSGID % 0)
    rest = b"\r\n"
    need = max(0, size - len(head) - mid_len - len(rest))
    line = b"x" * 76 + b"\r\n"
    filler = line * (need // len(line))
    tail = need - len(filler)
    if tail >= 2:
        filler += b"y" * (tail - 2) + b"\r\n"
    return head, rest + filler + b".\r\n"


class LoadGenerator:
    """Runs one benchmark; ``await run()`` returns a BenchResult."""

    def __init__(
        self, config: BenchConfig, on_progress: Callable[[BenchResult, float], None] | None = None
    ) -> None:
        self.config = c = config
        self.on_progress = on_progress
        self.result = BenchResult()
        base, _, domain = c.rcpt_to.partition("@")
        self.rcpts = [c.rcpt_to] if c.recipients <= 1 else [
            f"{base}+{i}@{domain}" for i in range(1, c.recipients + 1)
        ]
        self._head, self._rest = _body(c.size, c.mail_from, self.rcpts)
        self._ctx = client_context(c.cafile, c.insecure) if c.tls != "none" else None
        self._issued = 0
        self._deadline = 0.0
        self._next_slot = 0.0
        self._stop = False

    def stop(self) -> None:
        self._stop = True

    def _take(self) -> bool:
        c = self.config
        if self._stop:
            return False
        if c.messages is not None and self._issued >= c.messages:
            return False
        if c.duration is not None and time.perf_counter() >= self._deadline:
            return False
        self._issued += 1
        return True

    async def _pace(self) -> None:
        rate = self.config.rate
        if not rate:
            return
        now = time.perf_counter()
        slot = max(now, self._next_slot)
        self._next_slot = slot + 1.0 / rate
        if slot > now:
            await asyncio.sleep(slot - now)

    async def run(self) -> BenchResult:
        c = self.config
        start = time.perf_counter()
        self._deadline = start + (c.duration or 0)
        self._next_slot = start
        workers = [asyncio.ensure_future(self._worker()) for _ in range(max(1, c.concurrency))]
        ticker = asyncio.ensure_future(self._tick(start)) if self.on_progress else None
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            self.result.elapsed = time.perf_counter() - start
        if self.on_progress:
            self.on_progress(self.result, self.result.elapsed)
        return self.result

    async def _tick(self, start: float) -> None:
        assert self.on_progress is not None
        while True:
            await asyncio.sleep(0.25)
            self.on_progress(self.result, time.perf_counter() - start)

    # -- one worker ----------------------------------------------------------------------
    async def _worker(self) -> None:
        c = self.config
        r = self.result
        client: _Client | None = None
        exts: set[str] = set()
        on_conn = 0
        while self._take():
            await self._pace()
            r.attempted += 1
            try:
                if client is None:
                    client, exts = await self._open()
                    on_conn = 0
                await self._transaction(client, exts)
                r.accepted += 1
            except Rejected as rej:
                r.rejected += 1
                self._count_error(rej.stage, rej.code, rej.text)
                if rej.fatal and client is not None:
                    client.close()
                    client = None
            except Failure as fail:
                r.failed += 1
                self._count_failure(fail.stage, fail.kind, fail.message)
                if client is not None:
                    client.close()
                    client = None
            on_conn += 1
            if client is not None and c.per_connection and on_conn >= c.per_connection:
                await self._quit(client)
                client = None
        if client is not None:
            await self._quit(client)

    def _count_error(self, stage: str, code: int, text: str) -> None:
        key = (stage, code)
        self.result.errors[key] += 1
        self.result.error_samples.setdefault(key, text)

    def _count_failure(self, stage: str, kind: str, message: str) -> None:
        key = (stage, kind)
        self.result.failures[key] += 1
        self.result.failure_samples.setdefault(key, message)

    async def _command(self, client: _Client, stage: str, line: bytes) -> tuple[int, str]:
        client.stage = stage
        t = time.perf_counter()
        client.write(line)
        code, text = await client.reply()
        self.result.samples[stage].append(time.perf_counter() - t)
        return code, text.decode("utf-8", "replace").strip()

    async def _open(self) -> tuple[_Client, set[str]]:
        """Connect, greeting, EHLO, TLS, EHLO again, AUTH: a session ready for MAIL."""
        c = self.config
        r = self.result
        loop = asyncio.get_running_loop()
        client = _Client(loop, c.timeout)
        t = time.perf_counter()
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: client, c.host, c.port), c.timeout
            )
        except (OSError, TimeoutError) as exc:
            r.connect_failures += 1
            kind = "timeout" if isinstance(exc, TimeoutError) else "connect"
            # asyncio's "[Errno 111] Connect call failed (...)" -> "Connection refused", as send says
            reason = "no answer within the timeout" if kind == "timeout" else \
                (os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else str(exc))
            raise Failure(kind, "connect", reason or type(exc).__name__) from None
        t_conn = time.perf_counter()
        r.samples["connect"].append(t_conn - t)
        r.connections += 1
        try:
            if c.tls == "implicit":
                await self._handshake(client)
                t_conn = time.perf_counter()
            client.stage = "banner"
            code, text = await client.reply()
            # Greeting latency counts from the TCP connection (after TLS for implicit TLS).
            r.samples["banner"].append(time.perf_counter() - t_conn)
            if code != 220:
                raise Rejected("banner", code, text.decode("utf-8", "replace").strip(), fatal=True)
            exts = await self._ehlo(client)
            if c.tls in ("starttls", "opportunistic") and "STARTTLS" in exts:
                # One "tls" sample: the STARTTLS command plus the handshake.
                t = time.perf_counter()
                client.stage = "tls"
                client.write(b"STARTTLS\r\n")
                code, raw = await client.reply()
                if code != 220:
                    raise Rejected("tls", code, raw.decode("utf-8", "replace").strip(), fatal=True)
                await self._handshake(client, started=t)
                exts = await self._ehlo(client)
            elif c.tls == "starttls":
                raise Rejected("tls", 0, "STARTTLS not offered by the server", fatal=True)
            if c.user is not None:
                await self._auth(client)
            return client, exts
        except BaseException:
            client.close()
            raise

    async def _handshake(self, client: _Client, started: float | None = None) -> None:
        c = self.config
        assert self._ctx is not None and client.transport is not None
        loop = asyncio.get_running_loop()
        t = started if started is not None else time.perf_counter()
        client.stage = "tls"
        try:
            transport = await loop.start_tls(
                client.transport, client, self._ctx,
                server_hostname=c.server_hostname or c.host, ssl_handshake_timeout=c.timeout,
            )
        except (ssl.SSLError, OSError, TimeoutError, ConnectionError) as exc:
            raise Failure("tls", "tls", str(exc) or type(exc).__name__) from None
        if transport is None:
            raise Failure("tls", "tls", "TLS handshake did not complete")
        client.transport = transport  # type: ignore[assignment]
        self.result.samples["tls"].append(time.perf_counter() - t)
        if self.result.tls is None:
            obj = transport.get_extra_info("ssl_object")
            if obj is not None:
                cipher = obj.cipher()
                self.result.tls = {"version": obj.version(), "cipher": cipher[0] if cipher else None}

    async def _ehlo(self, client: _Client) -> set[str]:
        code, text = await self._command(client, "ehlo", f"EHLO {self.config.helo}\r\n".encode())
        if code != 250:
            raise Rejected("ehlo", code, text, fatal=True)
        exts = set()
        for line in text.splitlines()[1:]:
            word = line[4:].split(" ", 1)[0].upper()
            if word:
                exts.add(word)
        return exts

    async def _auth(self, client: _Client) -> None:
        c = self.config
        user, password = (c.user or "").encode(), (c.password or "").encode()
        t = time.perf_counter()
        client.stage = "auth"
        if c.mechanism.upper() == "LOGIN":
            client.write(b"AUTH LOGIN\r\n")
            for blob in (user, password):
                code, text = await client.reply()
                if code != 334:
                    break
                client.write(base64.b64encode(blob) + b"\r\n")
            else:
                code, text = await client.reply()
        else:
            token = base64.b64encode(b"\0" + user + b"\0" + password)
            client.write(b"AUTH PLAIN " + token + b"\r\n")
            code, text = await client.reply()
        self.result.samples["auth"].append(time.perf_counter() - t)
        if code != 235:
            # Never echo what we sent: the reply text only.
            raise Rejected("auth", code, text.decode("utf-8", "replace").strip(), fatal=True)

    async def _transaction(self, client: _Client, exts: set[str]) -> None:
        c = self.config
        r = self.result
        seq = self._issued
        size = len(self._head) + len(_MSGID % 0) + len(self._rest) - 3
        size_param = f" SIZE={size}" if "SIZE" in exts else ""
        mail = f"MAIL FROM:<{c.mail_from}>{size_param}\r\n".encode()
        rcpts = [f"RCPT TO:<{a}>\r\n".encode() for a in self.rcpts]
        body = self._head + _MSGID % (seq % 10**10) + self._rest
        t0 = time.perf_counter()
        if c.pipelining and "PIPELINING" in exts:
            r.pipelining_used = True
            accepted = await self._pipelined_envelope(client, mail, rcpts)
        else:
            accepted = await self._envelope(client, mail, rcpts)
        client.stage = "dot"
        t = time.perf_counter()
        client.write(body)
        code, text = await client.reply()
        r.samples["dot"].append(time.perf_counter() - t)
        r.bytes_sent += len(body)
        if code != 250:
            raise Rejected("dot", code, text.decode("utf-8", "replace").strip(), fatal=code == 421)
        r.rcpt_accepted += accepted
        r.samples["message"].append(time.perf_counter() - t0)

    async def _envelope(self, client: _Client, mail: bytes, rcpts: list[bytes]) -> int:
        code, text = await self._command(client, "mail", mail)
        if code != 250:
            await self._rset(client, code)
            raise Rejected("mail", code, text, fatal=code == 421)
        accepted = 0
        last: tuple[int, str] = (0, "")
        for line in rcpts:
            code, text = await self._command(client, "rcpt", line)
            if code == 250 or code == 251:
                accepted += 1
            else:
                self.result.rcpt_rejected += 1
                last = (code, text)
                if code == 421:
                    raise Rejected("rcpt", code, text, fatal=True)
        if not accepted:
            await self._rset(client, 0)
            raise Rejected("rcpt", *last)
        if accepted < len(rcpts):
            self._count_error("rcpt", *last)
        code, text = await self._command(client, "data", b"DATA\r\n")
        if code != 354:
            await self._rset(client, code)
            raise Rejected("data", code, text, fatal=code == 421)
        return accepted

    async def _pipelined_envelope(self, client: _Client, mail: bytes, rcpts: list[bytes]) -> int:
        """MAIL, every RCPT and DATA in one write (RFC 2920 3.1: DATA ends the group)."""
        r = self.result
        client.stage = "mail"
        t = time.perf_counter()
        client.write(mail + b"".join(rcpts) + b"DATA\r\n")
        mcode, mtext = await client.reply()
        r.samples["mail"].append(time.perf_counter() - t)
        accepted = 0
        last: tuple[int, str] = (0, "")
        client.stage = "rcpt"
        for _ in rcpts:
            code, text = await client.reply()
            r.samples["rcpt"].append(time.perf_counter() - t)
            if code in (250, 251):
                accepted += 1
            else:
                r.rcpt_rejected += 1
                last = (code, text.decode("utf-8", "replace").strip())
        client.stage = "data"
        dcode, dtext = await client.reply()
        r.samples["data"].append(time.perf_counter() - t)
        if dcode == 354 and (mcode != 250 or not accepted):
            # The server opened DATA anyway: end it empty, the transaction is already lost.
            client.write(b".\r\n")
            await client.reply()
        if mcode != 250:
            await self._rset(client, mcode)
            raise Rejected("mail", mcode, mtext.decode("utf-8", "replace").strip(), fatal=mcode == 421)
        if not accepted:
            await self._rset(client, 0)
            raise Rejected("rcpt", *last, fatal=last[0] == 421)
        if accepted < len(rcpts):
            self._count_error("rcpt", *last)
        if dcode != 354:
            await self._rset(client, dcode)
            raise Rejected("data", dcode, dtext.decode("utf-8", "replace").strip(), fatal=dcode == 421)
        return accepted

    async def _rset(self, client: _Client, code: int) -> None:
        if code == 421:
            return
        client.stage = "rset"
        client.write(b"RSET\r\n")
        await client.reply()

    async def _quit(self, client: _Client) -> None:
        with contextlib.suppress(Failure, ConnectionError, OSError):
            client.stage = "quit"
            client.write(b"QUIT\r\n")
            await asyncio.wait_for(client.reply(), min(self.config.timeout, 5.0))
        client.close()
