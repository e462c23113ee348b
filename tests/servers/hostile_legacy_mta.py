"""A deliberately sloppy SMTP server for the SMTP smuggling tests.

It ends DATA at ``\\r\\n.\\r\\n`` and at every extra sequence it is configured with (the way
vulnerable MTAs did before CVE-2023-51764/51765/51766), and keeps every message it accepted,
so a test can count what a smuggling attempt really stored. Commands are read leniently (a
bare LF ends a command line). Runs in a thread on a loopback port; each connection has a
bounded lifetime.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

STANDARD = b"\r\n.\r\n"


@dataclass
class LegacyMta:
    extra_terminators: tuple[bytes, ...] = ()
    messages: list[bytes] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        mta = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                mta._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def count(self) -> int:
        with self._lock:
            return len(self.messages)

    def _end_of_data(self, buf: bytes) -> tuple[int, int] | None:
        """(body end, index after the terminator) of the earliest terminator in ``buf``."""
        best: tuple[int, int] | None = None
        for term in (STANDARD, *self.extra_terminators):
            i = buf.find(term)
            if i >= 0 and (best is None or i < best[0]):
                best = (i, i + len(term))
        return best

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(10)
        buf = b""
        in_data = False

        def say(line: str) -> None:
            sock.sendall(line.encode() + b"\r\n")

        try:
            say("220 legacy.test ESMTP sloppy")
            while True:
                if in_data:
                    found = self._end_of_data(buf)
                    if found is None:
                        chunk = sock.recv(65536)
                        if not chunk:
                            return
                        buf += chunk
                        continue
                    with self._lock:
                        self.messages.append(buf[: found[0]])
                    buf = buf[found[1]:]
                    in_data = False
                    say("250 2.0.0 queued")
                    continue
                if b"\n" not in buf:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                    continue
                line, _, buf = buf.partition(b"\n")
                verb = line.rstrip(b"\r").split(b" ")[0].split(b":")[0].upper()
                if verb in (b"EHLO", b"HELO"):
                    say("250-legacy.test\r\n250 8BITMIME")
                elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                    say("250 2.0.0 ok")
                elif verb == b"DATA":
                    say("354 go ahead")
                    in_data = True
                elif verb == b"QUIT":
                    say("221 bye")
                    return
                else:
                    say("500 5.5.2 what?")
        except OSError:
            return


@pytest.fixture
def legacy_mta() -> Iterator[type[LegacyMta]]:
    """Factory: ``legacy_mta(extra_terminators=(b"\\n.\\n",))`` -> a running LegacyMta."""
    started: list[LegacyMta] = []

    def factory(**kw: object) -> LegacyMta:
        mta = LegacyMta(**kw)  # type: ignore[arg-type]
        started.append(mta)
        return mta

    yield factory  # type: ignore[misc]
    for mta in started:
        mta.stop()
