"""A raw TCP server that follows a script, for misbehaving SMTP peers.

Each accepted connection runs the script from the start (a callable script gets the connection
index and returns the steps). When the script ends, the peer half-closes (EOF) and drains what the
client still sends for up to `linger` seconds, recording it, then closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass(frozen=True)
class Send:
    """Send bytes as they are (no line ending added)."""

    data: bytes


@dataclass(frozen=True)
class Expect:
    """Read one line and record it; a line not starting with `prefix` is noted in `peer.errors`.

    EOF or `timeout` ends the script for this connection.
    """

    prefix: bytes = b""
    timeout: float = 10.0


@dataclass(frozen=True)
class ExpectData:
    """Read a DATA body up to and including ``\\r\\n.\\r\\n``; its lines are recorded too."""

    timeout: float = 10.0


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Close:
    """Close the connection now (a FIN; unread input may make the kernel send RST)."""


@dataclass(frozen=True)
class Reset:
    """Abort the connection with RST (SO_LINGER 0)."""


@dataclass(frozen=True)
class SendForever:
    """Send `chunk` every `interval` seconds until the client goes away or the peer stops."""

    chunk: bytes
    interval: float = 0.0


@dataclass(frozen=True)
class StartTLS:
    """Upgrade to TLS as the server side, with this context."""

    context: ssl.SSLContext


@dataclass(frozen=True)
class Drain:
    """Read and record lines until EOF or `timeout`."""

    timeout: float = 10.0


Step = Send | Expect | ExpectData | Sleep | Close | Reset | SendForever | StartTLS | Drain
Script = Sequence[Step] | Callable[[int], Sequence[Step]]


class _EndOfScript(Exception):
    pass


@dataclass
class Peer:
    """A running scripted peer. `received` holds every line read, raw (line ending included)."""

    script: Script
    host: str = "127.0.0.1"
    repeat: bool = True  # False: connections after the first are closed at once
    linger: float = 2.0
    received: list[bytes] = field(default_factory=list)
    transcripts: list[list[bytes]] = field(default_factory=list)  # per connection
    data_blocks: list[bytes] = field(default_factory=list)  # bodies read by ExpectData
    errors: list[str] = field(default_factory=list)
    port: int = 0
    connections: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def start(self) -> Peer:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._on_client, sock=sock)
            )
            self._loop.call_soon(ready.set)
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"scripted-peer-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(5):
            raise RuntimeError("scripted peer did not start")
        return self

    def stop(self) -> None:
        """Cancel every connection and stop the loop; bounded waits only."""
        if self._thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=2)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=3)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=3)
        if not self._thread.is_alive():
            self._loop.close()
        self._thread = None

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        index = self.connections
        self.connections += 1
        transcript: list[bytes] = []
        self.transcripts.append(transcript)
        try:
            if index > 0 and not self.repeat:
                return
            steps = self.script(index) if callable(self.script) else self.script
            try:
                for step in steps:
                    await self._run_step(step, reader, writer, transcript)
                if writer.can_write_eof():
                    writer.write_eof()
                await self._read_lines(reader, transcript, self.linger)
            except (_EndOfScript, ConnectionError, OSError, ssl.SSLError):
                pass
        finally:
            writer.close()
            self._tasks.discard(task)

    def _record(self, line: bytes, transcript: list[bytes]) -> None:
        self.received.append(line)
        transcript.append(line)

    async def _read_lines(
        self, reader: asyncio.StreamReader, transcript: list[bytes], timeout: float
    ) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while line := await reader.readline():
                    self._record(line, transcript)

    async def _run_step(
        self,
        step: Step,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        transcript: list[bytes],
    ) -> None:
        match step:
            case Send(data):
                writer.write(data)
                await writer.drain()
            case Expect(prefix, timeout):
                try:
                    line = await asyncio.wait_for(reader.readline(), timeout)
                except TimeoutError:
                    self.errors.append(f"timeout waiting for {prefix!r}")
                    raise _EndOfScript from None
                if not line:
                    self.errors.append(f"EOF waiting for {prefix!r}")
                    raise _EndOfScript
                self._record(line, transcript)
                if not line.upper().startswith(prefix.upper()):
                    self.errors.append(f"expected {prefix!r}, got {line!r}")
            case ExpectData(timeout):
                try:
                    block = await asyncio.wait_for(reader.readuntil(b"\r\n.\r\n"), timeout)
                except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    self.errors.append("DATA body not terminated")
                    raise _EndOfScript from None
                self.data_blocks.append(block)
                for line in block.splitlines(keepends=True):
                    self._record(line, transcript)
            case Sleep(seconds):
                await asyncio.sleep(seconds)
            case Close():
                writer.close()
                raise _EndOfScript
            case Reset():
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                raise _EndOfScript
            case SendForever(chunk, interval):
                while True:
                    writer.write(chunk)
                    await writer.drain()
                    await asyncio.sleep(interval)
            case StartTLS(context):
                await writer.start_tls(context)
            case Drain(timeout):
                await self._read_lines(reader, transcript, timeout)


def smtp_greeting_script(banner: bytes = b"220 peer.example.test ESMTP\r\n") -> list[Step]:
    """A minimal well-behaved exchange: banner, EHLO, MAIL, RCPT, DATA, QUIT."""
    return [
        Send(banner),
        Expect(b"EHLO"),
        Send(b"250-peer.example.test\r\n250 8BITMIME\r\n"),
        Expect(b"MAIL"),
        Send(b"250 2.1.0 Ok\r\n"),
        Expect(b"RCPT"),
        Send(b"250 2.1.5 Ok\r\n"),
        Expect(b"DATA"),
        Send(b"354 End data with <CR><LF>.<CR><LF>\r\n"),
        ExpectData(),
        Send(b"250 2.0.0 Ok: queued\r\n"),
        Expect(b"QUIT"),
        Send(b"221 2.0.0 Bye\r\n"),
    ]


PeerFactory = Callable[..., Peer]


@pytest.fixture
def scripted_peer() -> Iterator[PeerFactory]:
    """Factory: ``scripted_peer(script, *, host="127.0.0.1", repeat=True, linger=2.0) -> Peer``."""
    peers: list[Peer] = []

    def factory(script: Script, **kw: Any) -> Peer:
        peer = Peer(script, **kw).start()
        peers.append(peer)
        return peer

    yield factory
    for peer in peers:
        peer.stop()
