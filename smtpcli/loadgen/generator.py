"""An asyncio SMTP load generator (``smtpcli bench``): many messages over few connections.

Each of ``concurrency`` workers keeps one connection open and sends message after message on it
(RFC 5321 3.3: a new MAIL starts a new transaction after the final reply), optionally pipelining
MAIL/RCPT/DATA (RFC 2920), or opens a connection per message (``per_connection``). Each read's
replies drive a small state machine per session (``_Client``, ``_Pump``): no coroutine step,
future or timer per reply, which keeps the per-command cost low enough to hold up against
Postfix's smtp-source.

Counts always add up: ``attempted == accepted + rejected + failed``, where *rejected* is a
4xx/5xx reply that ended the transaction and *failed* is a network/TLS/timeout problem.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import ssl
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

STAGES = ("connect", "banner", "ehlo", "tls", "auth", "mail", "rcpt", "data", "dot", "message")
SETUP_STAGES = frozenset({"banner", "ehlo", "tls", "auth"})


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
    seq_base: int = 0  # first Message-ID number (worker processes each get their own range)
    timeout: float = 30.0


class Rejected(Exception):
    """A reply that ends the transaction (or the session, when ``fatal``)."""

    def __init__(self, stage: str, code: int, text: str, fatal: bool = False) -> None:
        super().__init__(f"{stage}: {text}")
        self.stage, self.code, self.text, self.fatal = stage, code, text, fatal


class Failure(Exception):
    """A network-level problem: ``kind`` is connect, timeout, closed, tls or protocol.

    ``repeats``: the same attempt would fail the same way (a certificate that does not verify).
    """

    def __init__(self, kind: str, stage: str, message: str, *, repeats: bool = False,
                 hint: str | None = None) -> None:
        super().__init__(f"{stage}: {message}")
        self.kind, self.stage, self.message = kind, stage, message
        self.repeats, self.hint = repeats, hint


@dataclass
class Halt:
    """Why a run stopped early: ``kind`` "reply" (a 5xx that would repeat) or "tls"."""

    kind: str
    stage: str
    text: str
    code: int = 0
    hint: str | None = None


class _Client(asyncio.BufferedProtocol, asyncio.Protocol):
    """Reply parser, fed the way each event loop reads cheapest.

    asyncio's own loop reads for a plain ``Protocol`` with ``recv(256 KiB)``, allocating a
    fresh buffer every time; as a ``BufferedProtocol`` it reads into this one fixed buffer
    instead (``get_buffer``, ``buffer_updated``). uvloop treats a class that is also a plain
    ``Protocol`` as one: it reads into its own loop-wide buffer and hands over ``bytes``
    (``data_received``), one Python call per read instead of two, and a reply that is the
    whole read needs no copy (about 8% of bench's instructions per message with a connection
    each).
    Complete replies go to ``on_reply``: by default the queue that ``reply()`` awaits (session
    set-up), during transactions the state machine of ``_Pump`` (no future per reply).
    """

    BUFSIZE = 2048  # grows (doubling) up to MAXLINE for a long reply line
    MAXLINE = 65536

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self._rbuf = bytearray(self.BUFSIZE)
        self._view = memoryview(self._rbuf)
        self._fill = 0
        self._lines: list[bytes] = []
        self._ready: deque[tuple[int, bytes]] = deque()
        self._waiters: deque[asyncio.Future[tuple[int, bytes]]] = deque()
        self._lost: BaseException | None = None
        self.stage = "connect"
        self.on_reply: Callable[[int, bytes], None] = self._queue
        self.on_lost: Callable[[BaseException], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view[self._fill:] if self._fill else self._view

    def buffer_updated(self, nbytes: int) -> None:
        """A read into the buffer (asyncio's loop): parsed as one ``bytes`` copy."""
        end = self._fill + nbytes
        self._fill = 0
        self._replies(self._view[:end].tobytes())

    def data_received(self, data: bytes) -> None:
        """A read handed over as bytes (uvloop): replies straight from it, no copy for a
        reply that is the whole read (the usual case)."""
        if self._fill:  # the start of a line waits in the buffer
            data = self._view[: self._fill].tobytes() + data
            self._fill = 0
        self._replies(data)

    def _replies(self, data: bytes) -> None:
        """Every whole reply in ``data`` to ``on_reply``; what is left waits for the next read.

        One regular-expression match per reply, however many lines it has: one C call for an
        EHLO reply, where a loop over its lines in Python was a third of bench's own work per
        message with --per-connection 1.
        """
        start, end = 0, len(data)
        while (m := _REPLY.match(data, start)) is not None:
            begin, start = start, m.end()
            text = data if start == end and not begin else data[begin:start]
            last = m.start(1) - begin  # where its last line starts
            head = text[last : last + 3]
            if self._lines:
                self._lines.append(text)
                text = b"".join(self._lines)
                self._lines = []
            self.on_reply(_CODES.get(head, 0), text)
            if start == end or self._lost is not None:
                return
        if self._lost is None:
            self._keep(data, start)

    def _keep(self, data: bytes, start: int) -> None:
        """The rest of a reply that goes on in a later read: its complete lines (continuations
        all, or _replies would have ended the reply) in _lines, the partial line in the buffer
        (grown by doubling; a line of 64 KiB or more ends the session)."""
        nl = data.rfind(b"\n", start)
        if nl >= 0:
            self._lines.append(data[start : nl + 1])
            start = nl + 1
        rest = len(data) - start
        if rest >= self.MAXLINE:
            self._fail(Failure("protocol", self.stage, "reply line longer than 64 KiB"))
            return
        if rest >= len(self._rbuf):
            # A new buffer: asyncio may still hold a view of the old one during this call.
            size = len(self._rbuf)
            while size <= rest:
                size *= 2
            self._rbuf = bytearray(size)
            self._view = memoryview(self._rbuf)
        self._rbuf[:rest] = data[start:]
        self._fill = rest

    def _queue(self, code: int, text: bytes) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result((code, text))
                return
        self._ready.append((code, text))

    def _fail(self, exc: BaseException) -> None:
        self._lost = exc
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(exc)
        if self.on_lost is not None:
            self.on_lost(exc)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lost is None:
            self._fail(Failure("closed", self.stage, f"connection closed by the server{f' ({exc})' if exc else ''}"))
        # Nothing is read after this. The bound method made this object (and its transport)
        # a reference cycle, left to the garbage collector: one a connection, and collections
        # every few dozen connections with --per-connection 1. Without it, freed at once.
        self.on_reply = _drop
        self.on_lost = None

    def eof_received(self) -> bool | None:
        return None

    def write(self, data: bytes) -> None:
        if self._lost is not None:
            raise self._loss()
        assert self.transport is not None
        self.transport.write(data)

    async def reply(self) -> tuple[int, bytes]:
        if self._ready:
            return self._ready.popleft()
        if self._lost is not None:
            raise self._loss()
        fut: asyncio.Future[tuple[int, bytes]] = self.loop.create_future()
        self._waiters.append(fut)
        handle = self.loop.call_later(self.timeout, _expire, fut, self.stage)
        try:
            return await fut
        finally:
            handle.cancel()

    def _loss(self) -> BaseException:
        """The loss to raise: a fresh exception for our own close (``_CLOSED`` is one shared
        marker, and an exception raised again keeps growing its traceback)."""
        lost = self._lost
        assert lost is not None
        return Failure("closed", self.stage, "connection closed by the client") \
            if lost is _CLOSED else lost

    def close(self) -> None:
        if self._lost is None:
            # Ours: connection_lost then has nothing to report (no Failure built per session).
            self._lost = _CLOSED
        if self.transport is not None:
            self.transport.abort()


# A whole reply (RFC 5321 4.2.1): lines "xyz-..." continue it, the first other line ends it;
# group 1 is that last line.
_REPLY = re.compile(rb"(?:[^\n]{3}-[^\n]*\n)*((?![^\n]{3}-)[^\n]*\n)")
_CODES = {b"%03d" % n: n for n in range(1000)}  # a reply's first three bytes -> its code, else 0
_CLOSED = Failure("closed", "close", "connection closed by the client")


def _drop(code: int, text: bytes) -> None:
    """Replies after the connection is lost: none come; nothing to do."""


def _expire(fut: asyncio.Future[Any], stage: str) -> None:
    if not fut.done():
        fut.set_exception(Failure("timeout", stage, "no reply within the timeout"))


def client_context(cafile: str | None, insecure: bool) -> ssl.SSLContext:
    """A verifying client context (system CAs or ``cafile``); ``insecure`` skips checks."""
    if insecure:
        from smtpcli.smtp.tlsinfo import unverified_context

        return unverified_context()
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
    # Not in the repr: asyncio formats the repr of the task that returns this result, and with
    # every latency sample in it that cost 0.1 s per 20,000 messages at exit.
    samples: dict[str, array[float]] = field(
        default_factory=lambda: {s: array("d") for s in STAGES}, repr=False)
    errors: Counter[tuple[str, int]] = field(default_factory=Counter)
    error_samples: dict[tuple[str, int], str] = field(default_factory=dict, repr=False)
    failures: Counter[tuple[str, str]] = field(default_factory=Counter)
    failure_samples: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)

    @property
    def rate(self) -> float:
        return self.accepted / self.elapsed if self.elapsed > 0 else 0.0

    def merge(self, other: BenchResult) -> None:
        """Add another process's counts and samples to these (the elapsed time is the
        longest: the processes ran side by side)."""
        for name in ("attempted", "accepted", "rejected", "failed", "rcpt_accepted",
                     "rcpt_rejected", "connections", "connect_failures", "bytes_sent"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.elapsed = max(self.elapsed, other.elapsed)
        self.pipelining_used = self.pipelining_used or other.pipelining_used
        self.tls = self.tls or other.tls
        for stage, values in other.samples.items():
            self.samples[stage].extend(values)
        self.errors.update(other.errors)
        self.failures.update(other.failures)
        for code_key, text in other.error_samples.items():
            self.error_samples.setdefault(code_key, text)
        for kind_key, message in other.failure_samples.items():
            self.failure_samples.setdefault(kind_key, message)

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


def run_loop(coro: Any) -> Any:
    """Run ``coro`` on uvloop when it is installed (libuv's event loop: a connection costs
    about a third less CPU than on asyncio's, which is what limits ``--per-connection 1``),
    else on asyncio's own loop. Both give the same results."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _run_part(config: BenchConfig) -> tuple[BenchResult, Halt | None]:
    gen = LoadGenerator(config)
    return run_loop(gen.run()), gen.halted


def run_processes(config: BenchConfig, workers: int) -> tuple[BenchResult, Halt | None]:
    """The run split over ``workers`` processes, each with its own event loop (and CPU core):
    messages, connections and --rate shared out, results merged. For when one core is the
    limit, as with a new connection per message."""
    import multiprocessing
    import sys
    from dataclasses import replace

    workers = max(1, min(workers, config.concurrency))
    parts = []
    for i in range(workers):
        messages = None if config.messages is None else \
            config.messages // workers + (1 if i < config.messages % workers else 0)
        if messages == 0:
            continue
        parts.append(replace(
            config, messages=messages,
            concurrency=config.concurrency // workers + (1 if i < config.concurrency % workers else 0),
            rate=config.rate / workers if config.rate else None,
            seq_base=config.seq_base + i * 10**8))
    # fork where it is safe and cheap (Linux: nothing but this thread runs yet).
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ctx.Pool(len(parts)) as pool:
        outcomes = pool.map(_run_part, parts)
    result = BenchResult()
    halted = None
    for part, halt in outcomes:
        result.merge(part)
        halted = halted or halt
    return result, halted


def loop_name() -> str:
    """The event loop ``run_loop`` uses, for the report."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


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
        self._gate = asyncio.Event()
        self._gate_open = False
        self.halted: Halt | None = None
        self._quitting: set[_Pump] = set()  # sessions that sent QUIT and await the 221
        self._quit_done = asyncio.Event()
        # Timeouts: one sweep a few times a second looks at every open session and pending
        # connect, instead of a timer per connection (a libuv timer each, plus asyncio.timeout's
        # bookkeeping around every connect: a measurable share of a connection per message).
        self._watched: set[_Pump] = set()  # sessions driven by their replies
        self._connecting: dict[asyncio.Task[None], float] = {}  # worker -> connect started
        self._connect_expired: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._ehlo_cmd = f"EHLO {c.helo}\r\n".encode()
        self._ehlo_cache: dict[bytes, set[str]] = {}
        self._command_cache: dict[tuple[bool, bool], tuple[bool, bytes, list[bytes], bytes]] = {}

    def stop(self) -> None:
        self._stop = True

    def _keywords(self, reply: bytes) -> set[str]:
        """EHLO keywords, parsed once per distinct reply (a connection per message would
        otherwise parse the same reply thousands of times)."""
        exts = self._ehlo_cache.get(reply)
        if exts is None:
            exts = self._ehlo_cache[reply] = ehlo_keywords(_text(reply))
            if len(self._ehlo_cache) > 64:  # a server that varies its reply: keep it small
                self._ehlo_cache.clear()
        return exts

    def _commands(self, pipelining: bool, size: bool) -> tuple[bool, bytes, list[bytes], bytes]:
        """(pipelining used, MAIL, RCPTs, MAIL+RCPTs+DATA) for a session's extensions, built
        once per combination rather than once per connection."""
        key = (pipelining, size)
        cmds = self._command_cache.get(key)
        if cmds is None:
            c = self.config
            length = len(self._head) + len(_MSGID % 0) + len(self._rest) - 3
            mail = f"MAIL FROM:<{c.mail_from}>{f' SIZE={length}' if size else ''}\r\n".encode()
            rcpts = [f"RCPT TO:<{a}>\r\n".encode() for a in self.rcpts]
            cmds = self._command_cache[key] = (
                c.pipelining and pipelining, mail, rcpts, mail + b"".join(rcpts) + b"DATA\r\n")
        return cmds

    def _take(self) -> int:
        """Reserve the next message: its number (from 1), or 0 when the run is over."""
        c = self.config
        if self._stop:
            return 0
        if c.messages is not None and self._issued >= c.messages:
            return 0
        if c.duration is not None and time.perf_counter() >= self._deadline:
            return 0
        self._issued += 1
        return self._issued

    def _pace_delay(self) -> float:
        """Seconds until the next message may start under ``--rate`` (0: now)."""
        rate = self.config.rate
        if not rate:
            return 0.0
        now = time.perf_counter()
        slot = max(now, self._next_slot)
        self._next_slot = slot + 1.0 / rate
        return slot - now

    def _halt(self, reason: Halt) -> None:
        """Stop every worker: the same failure would repeat on every further attempt."""
        if self.halted is None:
            self.halted = reason
        self._stop = True

    def _permanent(self, stage: str, code: int) -> bool:
        """A 5xx that will repeat: at session set-up (greeting, EHLO, STARTTLS, AUTH) always;
        in a transaction while nothing has been accepted yet (every message has the same
        envelope and content, so a rejection of the first will be a rejection of all)."""
        return 500 <= code < 600 and (stage in SETUP_STAGES or self.result.accepted == 0)

    async def run(self) -> BenchResult:
        c = self.config
        start = time.perf_counter()
        self._deadline = start + (c.duration or 0)
        self._next_slot = start
        self._gate, self._gate_open = asyncio.Event(), False
        self._sweeper = asyncio.get_running_loop().call_later(self._tick_s(), self._sweep)
        workers = [asyncio.ensure_future(self._worker(i == 0)) for i in range(max(1, c.concurrency))]
        ticker = asyncio.ensure_future(self._tick(start)) if self.on_progress else None
        try:
            await asyncio.gather(*workers)
            if self._quitting:  # the last sessions' 221 replies, briefly
                # Set whenever the set emptied earlier in the run: only the sessions still in
                # it now count (else the last ones were closed without waiting for their 221).
                self._quit_done.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(c.timeout, 5.0)):
                        await self._quit_done.wait()
        finally:
            if self._sweeper is not None:
                self._sweeper.cancel()
            for pump in list(self._quitting):
                pump.client.close()
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

    def _tick_s(self) -> float:
        """How often the sweep runs: a tenth of the shortest timeout it enforces, so a
        timeout fires at most 10% late."""
        return max(0.005, min(self.config.timeout, 5.0) / 10)

    def _sweep(self) -> None:
        """Fail what has waited too long: a connect, a reply; close a session whose 221 is late."""
        now = time.perf_counter()
        timeout = self.config.timeout
        for task, started in list(self._connecting.items()):
            if now - started >= timeout:
                del self._connecting[task]
                self._connect_expired.add(task)
                task.cancel()
        for pump in list(self._watched):
            pump._check(now)
        self._sweeper = asyncio.get_running_loop().call_later(self._tick_s(), self._sweep)

    async def _tick(self, start: float) -> None:
        assert self.on_progress is not None
        while True:
            await asyncio.sleep(0.25)
            self.on_progress(self.result, time.perf_counter() - start)

    # -- one worker ----------------------------------------------------------------------
    async def _worker(self, first: bool) -> None:
        """Open a session, hand it to a ``_Pump`` until it is done, repeat while messages remain.

        The first worker's first session is set up alone (the others wait for it), so a
        failure that would repeat on every connection (a wrong password, an untrusted
        certificate, a 554 greeting) stops the run after one attempt, not one per worker."""
        r = self.result
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        if not first:
            await self._gate.wait()
        paced = bool(self.config.rate)
        while seq := self._take():
            if paced and (delay := self._pace_delay()) > 0:
                await asyncio.sleep(delay)
            r.attempted += 1
            try:
                client = await self._connect(loop, task)
            except Failure as fail:
                self._gate.set()
                self._failed(fail)
                continue
            # Greeting, EHLO and transactions run in the pump; TLS and AUTH (once per session)
            # in coroutines between its two halves.
            # The number reserved above: other workers may have taken more since (a
            # Message-ID used twice was the result).
            pump = _Pump(self, client, seq)
            outcome = await pump.start()
            if outcome == "setup":
                try:
                    exts = await self._secure(client, pump.exts)
                except Rejected as rej:
                    r.rejected += 1
                    self._count_error(rej.stage, rej.code, rej.text)
                    if self._permanent(rej.stage, rej.code):
                        self._halt(Halt("reply", rej.stage, rej.text, rej.code))
                    continue
                except Failure as fail:
                    self._failed(fail)
                    continue
                finally:
                    self._gate.set()
                outcome = await pump.resume(exts)
            if outcome != "quit":
                client.close()
        self._gate.set()

    def _failed(self, fail: Failure) -> None:
        self.result.failed += 1
        self._count_failure(fail.stage, fail.kind, fail.message)
        if fail.repeats:
            self._halt(Halt("tls", fail.stage, fail.message, hint=fail.hint))

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

    async def _connect(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[None]) -> _Client:
        """A TCP connection (and the TLS handshake with implicit TLS), greeting not yet read.

        ``task``: the worker's own task, which the sweep cancels when the connect is overdue."""
        c = self.config
        r = self.result
        client = _Client(loop, c.timeout)
        t = time.perf_counter()
        self._connecting[task] = t
        try:
            try:
                await loop.create_connection(lambda: client, c.host, c.port)
            except asyncio.CancelledError:
                if task not in self._connect_expired:
                    raise  # the run itself is cancelled
                self._connect_expired.discard(task)
                task.uncancel()
                raise TimeoutError from None
            finally:
                self._connecting.pop(task, None)
        except (OSError, TimeoutError) as exc:
            r.connect_failures += 1
            kind = "timeout" if isinstance(exc, TimeoutError) else "connect"
            # asyncio's "[Errno 111] Connect call failed (...)" -> "Connection refused", as send says
            reason = "no answer within the timeout" if kind == "timeout" else \
                (os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else str(exc))
            raise Failure(kind, "connect", reason or type(exc).__name__) from None
        r.samples["connect"].append(time.perf_counter() - t)
        r.connections += 1
        if c.tls == "implicit":
            try:
                await self._handshake(client)
            except BaseException:
                client.close()
                raise
        return client

    async def _secure(self, client: _Client, exts: set[str]) -> set[str]:
        """After the first EHLO: STARTTLS and EHLO again, then AUTH, as configured."""
        c = self.config
        try:
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
            return exts
        except BaseException:
            client.close()
            raise

    def needs_setup(self, exts: set[str]) -> bool:
        """Whether a session needs more than greeting and EHLO before MAIL (TLS or AUTH)."""
        c = self.config
        return (c.tls == "starttls" or c.tls == "opportunistic" and "STARTTLS" in exts
                or c.user is not None)

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
        except ssl.SSLCertVerificationError as exc:
            from smtpcli.smtp.tlsinfo import verification_error

            # Worded as send words it; it would fail the same way on every connection.
            err = verification_error(exc, f"{c.host}:{c.port}")
            raise Failure("tls", "tls", err.message, repeats=True, hint=err.hint) from None
        except ssl.SSLError as exc:
            raise Failure("tls", "tls", f"TLS handshake with {c.host}:{c.port} failed: "
                          f"{exc.reason or exc}") from None
        except TimeoutError:
            raise Failure("timeout", "tls", f"TLS handshake with {c.host}:{c.port} timed out "
                          f"after {c.timeout:g}s") from None
        except OSError as exc:
            raise Failure("tls", "tls", f"connection to {c.host}:{c.port} lost during the TLS "
                          f"handshake: {exc.strerror or exc}") from None
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
        return ehlo_keywords(text)

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


class _Pump:
    """One session driven by its replies: greeting, EHLO, then message after message.

    A state machine called with each reply the ``_Client`` parses: each reply writes the next
    command directly, with no coroutine step, future or timer per reply (what made ``bench``
    CPU-bound on one core). The run's sweep (``LoadGenerator._sweep``) watches for a missing
    reply, with no timer per session either. ``start()`` reads the greeting, sends EHLO and
    then the message the worker already reserved; its future says "setup" when the session
    needs STARTTLS or AUTH first (the worker does those, then calls ``resume()``), "quit" when
    no message is left (or --per-connection is reached; QUIT is sent and the 221 awaited here,
    without holding up the worker), "closed" when the session cannot go on.
    """

    def __init__(self, gen: LoadGenerator, client: _Client, seq: int) -> None:
        self.gen, self.client, self.result = gen, client, gen.result
        self.loop = client.loop
        self.exts: set[str] = set()
        self.pipelining = False
        self.mail = self.envelope = b""
        self.rcpts: list[bytes] = []
        self.done: asyncio.Future[str] = self.loop.create_future()
        self.stage = "banner"
        self.seq = seq
        self.on_conn = 0
        self.in_flight = True  # the reserved message is counted in attempted
        self.t0 = self.t = time.perf_counter()  # greeting latency counts from the connection
        self.idx = self.accepted = 0
        self.mcode = 0
        self.mtext = b""
        self.last: tuple[int, bytes] = (0, b"")

    def start(self) -> asyncio.Future[str]:
        self.client.stage = "banner"
        self._attach()
        return self.done

    def resume(self, exts: set[str]) -> asyncio.Future[str]:
        """Go on after STARTTLS/AUTH with the EHLO keywords of the secured session."""
        self.done = self.loop.create_future()
        self._attach()
        if not self.done.done():
            self._ready(exts)
        return self.done

    def _attach(self) -> None:
        client = self.client
        client.on_reply = self._reply
        client.on_lost = self._lost
        self.gen._watched.add(self)  # the run's sweep watches for a missing reply
        # What arrived before the pump took over (the greeting can: with uvloop, or after an
        # implicit-TLS handshake) waits in the client's queue; a loss is already recorded.
        while client._ready and not self.done.done():
            self._reply(*client._ready.popleft())
        if client._lost is not None and not self.done.done():
            self._lost(client._lost)

    def _ready(self, exts: set[str]) -> None:
        """The session may send MAIL: build the commands its extensions allow, send the first."""
        gen = self.gen
        if not gen._gate_open:  # the first session is through: let the other workers start
            gen._gate_open = True
            gen._gate.set()
        self.pipelining, self.mail, self.rcpts, self.envelope = gen._commands(
            "PIPELINING" in exts, "SIZE" in exts)
        self._send_mail()

    # -- sending -------------------------------------------------------------------------
    def _write(self, stage: str, data: bytes) -> None:
        client = self.client
        self.stage = client.stage = stage
        self.t = time.perf_counter()
        if client._lost is None:  # else the session is already being ended
            client.transport.write(data)  # type: ignore[union-attr]

    def _send_mail(self) -> None:
        if self.done.done():
            return
        self.t0 = time.perf_counter()
        self.idx = self.accepted = 0
        self.last = (0, b"")
        if self.pipelining:
            # RFC 2920 3.1: MAIL, every RCPT and DATA in one write; DATA ends the group.
            self.result.pipelining_used = True
            self.idx = -1  # the first reply answers MAIL
            self._write("pipe", self.envelope)
        else:
            self._write("mail", self.mail)

    def _send_body(self) -> None:
        gen = self.gen
        body = gen._head + _MSGID % ((gen.config.seq_base + self.seq) % 10**10) + gen._rest
        self.result.bytes_sent += len(body)
        self._write("dot", body)

    def _next(self) -> None:
        """The message is counted: go on with the next one, or end the session."""
        gen, c = self.gen, self.gen.config
        self.in_flight = False
        self.on_conn += 1
        seq = 0 if c.per_connection and self.on_conn >= c.per_connection else gen._take()
        if not seq:
            self._finish("quit")
            return
        self.result.attempted += 1
        self.in_flight = True
        self.seq = seq
        delay = gen._pace_delay()
        if delay > 0:
            self.stage = "pace"
            self.loop.call_later(delay, self._send_mail)
        else:
            self._send_mail()

    # -- replies -------------------------------------------------------------------------
    def _reply(self, code: int, text: bytes) -> None:
        stage, samples = self.stage, self.result.samples
        now = time.perf_counter()
        elapsed = now - self.t
        if stage == "dot":
            samples["dot"].append(elapsed)
            if code == 250:
                r = self.result
                r.accepted += 1
                r.rcpt_accepted += self.accepted
                samples["message"].append(now - self.t0)
                self._next()
            else:
                self._reject("dot", code, text, rset=False)
        elif stage == "mail":
            samples["mail"].append(elapsed)
            if code == 250:
                self._write("rcpt", self.rcpts[0])
            else:
                self._reject("mail", code, text)
        elif stage == "rcpt":
            samples["rcpt"].append(elapsed)
            if self._count_rcpt(code, text):
                return
            if self.idx < len(self.rcpts):
                self._write("rcpt", self.rcpts[self.idx])
            elif self._envelope_ok():
                self._write("data", b"DATA\r\n")
        elif stage == "data":
            samples["data"].append(elapsed)
            if code == 354:
                self._send_body()
            else:
                self._reject("data", code, text)
        elif stage == "pipe":
            self._pipelined_reply(code, text, elapsed)
        elif stage == "discard":
            self._pipelined_verdict(0)
        elif stage == "rset":
            self._next()
        elif stage == "banner":
            samples["banner"].append(elapsed)
            if code == 220:
                self._write("ehlo", self.gen._ehlo_cmd)
            else:
                self._reject("banner", code, text)
        elif stage == "ehlo":
            samples["ehlo"].append(elapsed)
            if code != 250:
                self._reject("ehlo", code, text)
                return
            self.exts = self.gen._keywords(text)
            if self.gen.needs_setup(self.exts):
                self._finish("setup")
            else:
                self._ready(self.exts)
        elif stage == "quit":
            self._close()

    def _count_rcpt(self, code: int, text: bytes) -> bool:
        """Count one RCPT reply; True when it ended the session (421)."""
        self.idx += 1
        if code == 250 or code == 251:
            self.accepted += 1
            return False
        self.result.rcpt_rejected += 1
        self.last = (code, text)
        if code == 421 and not self.pipelining:
            self._reject("rcpt", code, text)
            return True
        return False

    def _envelope_ok(self) -> bool:
        """After the last RCPT: go on when one recipient was accepted (partial refusals are
        counted as errors), else the message is rejected."""
        if not self.accepted:
            self._reject("rcpt", *self.last)
            return False
        if self.accepted < len(self.rcpts):
            self.gen._count_error("rcpt", self.last[0], _text(self.last[1]))
        return True

    def _pipelined_reply(self, code: int, text: bytes, elapsed: float) -> None:
        samples = self.result.samples
        if self.idx < 0:
            samples["mail"].append(elapsed)
            self.idx, self.mcode, self.mtext = 0, code, text
            return
        if self.idx < len(self.rcpts):
            samples["rcpt"].append(elapsed)
            self._count_rcpt(code, text)
            return
        samples["data"].append(elapsed)
        mcode = self.mcode
        if code == 354 and (mcode != 250 or not self.accepted):
            # The server opened DATA anyway: end it empty, the transaction is already lost.
            self.stage = "discard"
            self.client.write(b".\r\n")
            return
        self._pipelined_verdict(code, text)

    def _pipelined_verdict(self, dcode: int, dtext: bytes = b"") -> None:
        mcode, mtext = self.mcode, self.mtext
        self.mcode, self.mtext = 0, b""
        if mcode != 250:
            self._reject("mail", mcode, mtext)
        elif self._envelope_ok():
            if dcode == 354:
                self._send_body()
            else:
                self._reject("data", dcode, dtext)

    def _reject(self, stage: str, code: int, raw: bytes, rset: bool = True) -> None:
        """A reply that ends the transaction: count it, then RSET (RFC 5321 4.1.1.5) and go on,
        close after 421, or stop the whole run when the same rejection would repeat."""
        gen, r = self.gen, self.result
        text = _text(raw)
        r.rejected += 1
        self.in_flight = False
        gen._count_error(stage, code, text)
        if gen._permanent(stage, code):
            gen._halt(Halt("reply", stage, text, code))
            self._finish("quit")
        elif code == 421 or stage in SETUP_STAGES:
            self._finish("closed")
        elif rset:
            self._write("rset", b"RSET\r\n")
        else:
            self._next()

    # -- the end of the session ----------------------------------------------------------
    def _check(self, now: float) -> None:
        """From the run's sweep: fail when a reply is overdue; close when the 221 is late."""
        timeout = self.gen.config.timeout
        waited = now - self.t
        if self.stage == "quit" and waited >= min(timeout, 5.0):
            self._close()
        elif self.stage != "pace" and self.stage != "quit" and waited >= timeout:
            self.client._fail(Failure("timeout", self.stage, "no reply within the timeout"))

    def _lost(self, exc: BaseException) -> None:
        if self.in_flight and isinstance(exc, Failure):
            self.result.failed += 1
            self.gen._count_failure(exc.stage, exc.kind, exc.message)
        self.in_flight = False
        if self.stage == "quit":
            self._close()
        else:
            self._finish("closed")

    def _finish(self, outcome: str) -> None:
        """Hand the session back to the worker; after the last message, QUIT first."""
        if outcome == "quit" and self.client._lost is None:
            self._write("quit", b"QUIT\r\n")
            self.gen._quitting.add(self)
        else:
            self._detach()
        if not self.done.done():
            self.done.set_result(outcome)

    def _detach(self) -> None:
        self.gen._watched.discard(self)
        self.client.on_reply = self.client._queue
        self.client.on_lost = None

    def _close(self) -> None:
        """The 221 to QUIT arrived (or did not in time): close, tell the run if it was last."""
        self._detach()
        self.client.close()
        quitting = self.gen._quitting
        quitting.discard(self)
        if not quitting:
            self.gen._quit_done.set()


def ehlo_keywords(text: str) -> set[str]:
    """The extension keywords of an EHLO reply (RFC 5321 4.1.1.1), upper-cased."""
    exts = set()
    for line in text.splitlines()[1:]:
        word = line[4:].split(" ", 1)[0].upper()
        if word:
            exts.add(word)
    return exts


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").strip()
