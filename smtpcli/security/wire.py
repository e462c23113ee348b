"""A byte-exact SMTP client for the security probes.

The probes need what smtplib hides: sending several commands in one packet (STARTTLS
injection), non-standard line endings inside DATA (smuggling), and the time each reply took.
``Wire`` is a plain socket with a read buffer; every read is bounded by a deadline, lines by
``MAXLINE`` and replies by ``MAX_REPLY_LINES``, so a hostile peer can neither hang nor flood it.
Failures are ``smtpcli.errors`` exceptions (exit 3), like the rest of the client.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from smtpcli.errors import ConnectError, NetworkTimeout, ProtocolError, TlsError
from smtpcli.smtp.reply import Reply
from smtpcli.smtp.target import Target, TlsMode
from smtpcli.smtp.tlsinfo import unverified_context

MAXLINE = 8192  # as the main client: RFC 5321 4.5.3.1.5 says 512, real servers need more
MAX_REPLY_LINES = 1000
MAX_SHOWN = 300  # transcript lines are cut here
_REPLY_LINE = re.compile(rb"^([2-5][0-9][0-9])([ -]|$)")


@dataclass(frozen=True)
class TimedReply:
    """A reply and when it completed, in ms after the last ``mark()``."""

    reply: Reply
    ms: float

    @property
    def code(self) -> int:
        return self.reply.code

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.reply.code, "text": self.reply.one_line()[4:], "ms": round(self.ms, 1)}


def _show(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\x00", "\\0")
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}... [{len(data)} bytes]"


@dataclass
class Wire:
    """One connection: ``open()``, ``send()``, ``reply()``, ``poll()``, ``starttls()``."""

    target: Target
    timeout: float = 10.0
    ehlo_name: str | None = None
    server_name: str | None = None  # SNI
    sock: socket.socket | None = None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    capabilities: dict[str, str] = field(default_factory=dict)
    tls: bool = False
    local: tuple[str, int] | None = None
    ehlo_reply: Reply | None = None

    def __post_init__(self) -> None:
        self._buf = bytearray()
        self._start = time.monotonic()
        self._mark = self._start

    # ---- plumbing --------------------------------------------------------------------------

    @property
    def where(self) -> str:
        return self.target.display

    def _log(self, direction: str, data: bytes | str) -> None:
        line = data if isinstance(data, str) else _show(data)
        self.transcript.append({
            "t": round((time.monotonic() - self._start) * 1000, 1), "dir": direction, "line": line,
        })

    def mark(self) -> None:
        """Start the clock that ``TimedReply.ms`` is measured from."""
        self._mark = time.monotonic()

    def open(self) -> Reply:
        """Connect (with the implicit TLS handshake on such targets) and read the greeting."""
        hosts = list(self.target.addresses) or [self.target.host]
        errors: list[str] = []
        for host in hosts:
            try:
                sock = socket.create_connection((host, self.target.port), timeout=self.timeout)
            except TimeoutError:
                errors.append(f"{host}: timed out after {self.timeout:g}s")
                continue
            except OSError as exc:
                errors.append(f"{host}: {exc.strerror or exc}")
                continue
            self.sock = sock
            self.local = sock.getsockname()[:2]
            break
        else:
            raise ConnectError(f"cannot connect to {self.where}: {'; '.join(errors)}")
        self._log("info", f"connected to {self.where}")
        if self.target.tls is TlsMode.IMPLICIT:
            self._handshake()
        return self.reply().reply

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes, *, show: bool = True) -> None:
        """Write ``data`` as is, in one ``sendall`` (one packet for small writes)."""
        if self.sock is None:
            raise ProtocolError(f"not connected to {self.where}")
        if show:
            self._log("sent", data)
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(data)
        except TimeoutError:
            self.close()
            raise NetworkTimeout(f"sending to {self.where} timed out after {self.timeout:g}s") from None
        except OSError as exc:
            self.close()
            raise ProtocolError(f"{self.where} closed the connection ({exc.strerror or exc})") from None

    def _fill(self, deadline: float) -> bool:
        """Read more bytes before ``deadline``; False on timeout. EOF raises ProtocolError."""
        if self.sock is None:
            raise ProtocolError(f"not connected to {self.where}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
        except (TimeoutError, ssl.SSLWantReadError):
            return False
        except OSError as exc:
            self.close()
            raise ProtocolError(f"connection to {self.where} failed: {exc.strerror or exc}") from None
        if not chunk:
            self.close()
            raise ProtocolError(f"{self.where} closed the connection")
        self._buf += chunk
        return True

    def _line(self, deadline: float) -> bytes | None:
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[: end + 1])
                del self._buf[: end + 1]
                if len(line) > MAXLINE:
                    self.close()
                    raise ProtocolError(f"{self.where} sent a line longer than {MAXLINE} bytes")
                return line
            if len(self._buf) > MAXLINE:
                self.close()
                raise ProtocolError(f"{self.where} sent a line longer than {MAXLINE} bytes")
            if not self._fill(deadline):
                return None

    def poll(self, wait: float) -> TimedReply | None:
        """A complete reply arriving within ``wait`` seconds, or None if nothing (complete) came."""
        deadline = time.monotonic() + wait
        code: int | None = None
        lines: list[str] = []
        consumed = bytearray()
        while True:
            raw = self._line(deadline)
            if raw is None:
                # Put back a partial multi-line reply so a later read sees it whole.
                self._buf[:0] = consumed
                return None
            consumed += raw
            text = raw.rstrip(b"\r\n")
            self._log("recv", text)
            m = _REPLY_LINE.match(text)
            if m is None:
                self.close()
                raise ProtocolError(
                    f"{self.where} sent garbage instead of an SMTP reply: {_show(text[:60])!r}"
                )
            if code is None:
                code = int(m.group(1))
            lines.append(text[4:].decode("utf-8", "replace"))
            if m.group(2) != b"-":
                return TimedReply(Reply(code, tuple(lines)), (time.monotonic() - self._mark) * 1000)
            if len(lines) >= MAX_REPLY_LINES:
                self.close()
                raise ProtocolError(f"{self.where} sent a reply of more than {MAX_REPLY_LINES} lines")

    def reply(self, timeout: float | None = None) -> TimedReply:
        """The next reply; ``NetworkTimeout`` when none completes within the timeout."""
        wait = self.timeout if timeout is None else timeout
        got = self.poll(wait)
        if got is None:
            self.close()
            raise NetworkTimeout(f"no reply from {self.where} within {wait:g}s")
        return got

    def command(self, line: str) -> Reply:
        self.mark()
        self.send(line.encode("utf-8") + b"\r\n")
        return self.reply().reply

    def pending(self) -> bytes:
        """Bytes received but not yet read as a reply."""
        return bytes(self._buf)

    # ---- SMTP steps ----------------------------------------------------------------------

    def hello(self) -> Reply:
        """EHLO (HELO on a 5xx); fills ``capabilities`` (upper-case keyword -> parameters)."""
        name = self.ehlo_name
        if not name:
            host = self.local[0] if self.local else "127.0.0.1"
            name = f"[IPv6:{host}]" if ":" in host else f"[{host}]"
        reply = self.command(f"EHLO {name}")
        if 500 <= reply.code < 600 and reply.code != 521:
            reply = self.command(f"HELO {name}")
        self.capabilities = {}
        self.ehlo_reply = reply
        if reply.code == 250:
            for line in reply.lines[1:]:
                keyword, _, params = line.strip().partition(" ")
                if keyword:
                    self.capabilities[keyword.upper()] = params
        return reply

    def announced_name(self) -> str | None:
        """The name the server gives first in its EHLO reply (RFC 5321 4.1.1.1)."""
        reply = self.ehlo_reply
        first = reply.lines[0].split() if reply is not None and reply.lines else []
        return first[0] if first else None

    def _handshake(self) -> None:
        assert self.sock is not None
        try:
            # No verification: the probes test protocol behaviour, not the certificate
            # (``probe`` reports the certificate on its own).
            self.sock = unverified_context().wrap_socket(
                self.sock, server_hostname=self.server_name or self.target.host
            )
        except TimeoutError:
            self.close()
            raise NetworkTimeout(f"TLS handshake with {self.where} timed out") from None
        except ssl.SSLError as exc:
            self.close()
            raise TlsError(f"TLS handshake with {self.where} failed: {exc.reason or exc}") from None
        except OSError as exc:
            self.close()
            raise TlsError(f"connection to {self.where} lost during the TLS handshake: {exc}") from None
        self.tls = True
        self._log("tls", f"TLS established ({self.sock.version()})")

    def handshake(self) -> bytes:
        """TLS handshake on the open connection; returns plaintext bytes the server had sent
        beyond the last reply (RFC 3207 4.2: nothing may come before the handshake)."""
        leftover = bytes(self._buf)
        self._buf.clear()
        self._handshake()
        return leftover

    def starttls(self) -> Reply:
        """STARTTLS and, on 220, the handshake; capabilities are forgotten (RFC 3207 4.2)."""
        reply = self.command("STARTTLS")
        if reply.code == 220:
            self.handshake()
            self.capabilities = {}
        return reply
