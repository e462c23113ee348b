"""A small ESMTP server for the send tests: speaks BDAT (RFC 3030), which aiosmtpd does not, and
advertises PIPELINING, DSN, SIZE, 8BITMIME, SMTPUTF8, REQUIRETLS and CHUNKING.

It records every command line and every message byte-for-byte (``commands``, ``messages``),
and can reject recipients (``reject_rcpt``) and chunks. Runs its own loop in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

CAPABILITIES = ("PIPELINING", "SIZE 10485760", "8BITMIME", "SMTPUTF8", "DSN", "CHUNKING",
                "ENHANCEDSTATUSCODES")


@dataclass
class Received:
    mail_from: str
    rcpt: list[str]
    data: bytes
    method: str
    chunks: list[int]


@dataclass
class BdatServer:
    capabilities: tuple[str, ...] = CAPABILITIES
    reject_rcpt: dict[str, str] = field(default_factory=dict)
    queue_reply: str = "250 2.0.0 Ok: queued as 4XyZ12AbC"
    commands: list[bytes] = field(default_factory=list)
    reads: list[int] = field(default_factory=list)  # sizes of each socket read (pipelining)
    messages: list[Received] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None

    def start(self) -> BdatServer:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._client, sock=sock))
            self._loop.call_soon(ready.set)
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(5)
        return self

    def stop(self) -> None:
        if self._thread is None:
            return

        async def down() -> None:
            if self._server is not None:
                self._server.close()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(down(), self._loop).result(3)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(3)
        self._thread = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")

        say("220 bdat.example.test ESMTP")
        mail_from, rcpts, chunks, body = "", [], [], b""
        try:
            while True:
                line = await asyncio.wait_for(reader.readline(), 10)
                if not line:
                    return
                self.commands.append(line)
                verb = line.split(b" ", 1)[0].split(b":", 1)[0].upper().strip()
                text = line.decode("utf-8", "replace").strip()
                if verb == b"EHLO":
                    caps = ["bdat.example.test", *self.capabilities]
                    for n, cap in enumerate(caps):
                        say(f"250{'-' if n < len(caps) - 1 else ' '}{cap}")
                elif verb == b"MAIL":
                    mail_from, rcpts, chunks, body = text.split("<", 1)[1].split(">")[0], [], [], b""
                    say("250 2.1.0 Ok")
                elif verb == b"RCPT":
                    addr = text.split("<", 1)[1].split(">")[0]
                    if addr in self.reject_rcpt:
                        say(self.reject_rcpt[addr])
                    else:
                        rcpts.append(addr)
                        say("250 2.1.5 Ok")
                elif verb == b"BDAT":
                    parts = text.split()
                    size = int(parts[1])
                    chunk = await reader.readexactly(size)
                    chunks.append(size)
                    body += chunk
                    if len(parts) > 2 and parts[2].upper() == "LAST":
                        self.messages.append(Received(mail_from, rcpts, body, "BDAT", chunks))
                        say(self.queue_reply)
                    else:
                        say(f"250 2.0.0 {size} octets received")
                elif verb == b"DATA":
                    say("354 go ahead")
                    data = b""
                    while True:
                        chunk_line = await reader.readline()
                        if chunk_line in (b".\r\n", b""):
                            break
                        data += chunk_line[1:] if chunk_line.startswith(b"..") else chunk_line
                    self.messages.append(Received(mail_from, rcpts, data, "DATA", []))
                    say(self.queue_reply)
                elif verb == b"RSET":
                    say("250 2.0.0 Ok")
                elif verb == b"QUIT":
                    say("221 2.0.0 Bye")
                    await writer.drain()
                    return
                else:
                    say("502 5.5.2 Error: command not recognized")
                await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


@pytest.fixture
def bdat_server() -> Iterator[type[BdatServer]]:
    """Factory fixture: ``bdat_server(**kw).start()`` is stopped at the end of the test."""
    started: list[BdatServer] = []

    class Factory(BdatServer):
        def start(self) -> BdatServer:
            started.append(self)
            return super().start()

    yield Factory
    for s in started:
        s.stop()
