"""An SMTP client connection on smtplib that records a transcript, stage timings and TLS facts.

``SmtpConnection`` subclasses ``smtplib.SMTP`` so smtplib's EHLO parsing and AUTH loop are reused,
but replaces the I/O edges: ``send`` and ``getreply`` record every line with its stage, every step
is bounded by ``timeout`` (connect, each reply, the TLS handshake), and every failure becomes one
``smtpcli.errors`` exception with one clear line:

* no connection / refused / unreachable -> ``ConnectError``
* a step exceeding the timeout -> ``NetworkTimeout``
* garbage instead of a reply code, a line over 8192 bytes, the peer closing mid-conversation ->
  ``ProtocolError``
* handshake or certificate failure -> ``TlsError``

All exit 3. SMTP rejections are *not* raised here: callers get ``Reply`` objects and decide.

Typical use::

    conn = SmtpConnection(parse_target("mx.example:25"), ConnectOptions(timeout=10))
    banner = conn.open()          # connect (+ implicit TLS) + greeting
    conn.hello()                  # EHLO, falling back to HELO
    if conn.tls_mode_wants_starttls(): conn.start_tls(); conn.hello()
    ...
    conn.quit()
"""

from __future__ import annotations

import re
import select
import smtplib
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any

from smtpcli.errors import (
    ConnectError,
    NetworkTimeout,
    ProtocolError,
    SmtpReplyError,
    TlsError,
)
from smtpcli.records import FrozenRecord
from smtpcli.smtp.reply import Reply
from smtpcli.smtp.target import Target, TlsMode, loopback_addresses
from smtpcli.smtp.tlsinfo import TlsInfo, TlsOptions, collect, make_context, verification_error
from smtpcli.smtp.transcript import Transcript

if TYPE_CHECKING:
    from collections.abc import Iterator

# RFC 5321 4.5.3.1.5 allows 512 octets per reply line; smtplib accepts up to 8192 and so do we.
MAXLINE = 8192
# A reply of more lines than this is a misbehaving (or hostile) peer, not a capability list.
MAX_REPLY_LINES = 1000
# Transcript lines are cut here so a 1 MiB line never floods the terminal or JSON.
MAX_SHOWN = 1000

_REPLY_LINE = re.compile(rb"^([2-5][0-9][0-9])([ -]|$)")


class ConnectOptions(FrozenRecord):
    """How to connect: bounds, local name, TLS options, address family, local bind address."""

    __slots__ = ("timeout", "ehlo_name", "tls", "family", "source_address", "show_secrets",
                 "with_chain")
    timeout: float
    ehlo_name: str | None
    tls: TlsOptions
    family: int  # 0 any, 4 or 6
    source_address: str | None
    show_secrets: bool
    with_chain: bool  # parse the certificate chain into TLS facts (imports cryptography)

    def __init__(self, timeout: float = 10.0, ehlo_name: str | None = None,
                 tls: TlsOptions | None = None, family: int = 0,
                 source_address: str | None = None, show_secrets: bool = False,
                 with_chain: bool = True) -> None:
        self._set(timeout=timeout, ehlo_name=ehlo_name,
                  tls=TlsOptions() if tls is None else tls, family=family,
                  source_address=source_address, show_secrets=show_secrets,
                  with_chain=with_chain)


def _shown(line: str) -> str:
    if len(line) > MAX_SHOWN:
        return f"{line[:MAX_SHOWN]}... [{len(line)} characters]"
    return line


class SmtpConnection(smtplib.SMTP):
    """One SMTP conversation with a transcript (see module docstring)."""

    def __init__(
        self, target: Target, options: ConnectOptions | None = None,
        transcript: Transcript | None = None,
    ) -> None:
        self.target = target
        self.options = options or ConnectOptions()
        self.transcript = transcript or Transcript(redact_secrets=not self.options.show_secrets)
        # local_hostname given so smtplib does not call getfqdn() (a DNS lookup) here.
        super().__init__(local_hostname="localhost", timeout=self.options.timeout)
        self._host = target.host
        # smtplib says "ehlo"; servers don't care but people reading transcripts expect caps.
        self.ehlo_msg = "EHLO"
        self.tls: TlsInfo | None = None
        self.peer: tuple[str, int] | None = None
        self.local: tuple[str, int] | None = None
        self.banner: Reply | None = None
        self.last_reply: Reply | None = None
        self.utf8_commands = False
        self._context: ssl.SSLContext | None = None
        # Bytes received but not yet consumed as reply lines (our own buffer, not smtplib's
        # ``file``, so that every read is bounded by a deadline and unread replies are visible).
        self._rbuf = bytearray()

    # ---- connection set-up -------------------------------------------------------------

    @property
    def where(self) -> str:
        return self.target.display

    def _candidates(self) -> list[tuple[int, tuple[Any, ...]]]:
        """(family, sockaddr) pairs to try, in order."""
        family = {4: socket.AF_INET, 6: socket.AF_INET6}.get(self.options.family, socket.AF_UNSPEC)
        # RFC 6761 6.3: localhost names are the loopback addresses, never a resolver's answer.
        pinned = self.target.addresses or loopback_addresses(self.target.host,
                                                             self.options.family)
        hosts = list(pinned or [self.target.host])
        out: list[tuple[int, tuple[Any, ...]]] = []
        for host in hosts:
            try:
                # An ASCII name as bytes: the same lookup without loading the idna codec,
                # which getaddrinfo applies to every str host.
                name: str | bytes = host.encode("ascii") if host.isascii() else host
                infos = socket.getaddrinfo(name, self.target.port, family, socket.SOCK_STREAM)
            except socket.gaierror as exc:
                if pinned:
                    continue
                raise ConnectError(f"cannot resolve {self.target.host}: {exc.strerror}") from None
            out.extend((info[0], info[4]) for info in infos)
        if not out:
            want = f"IPv{self.options.family} " if self.options.family else ""
            raise ConnectError(f"no {want}address to connect to for {self.where}")
        return out

    def _connect_socket(self) -> socket.socket:
        errors: list[str] = []
        timed_out = False
        for family, addr in self._candidates():
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(self.options.timeout)
            try:
                if self.options.source_address:
                    sock.bind((self.options.source_address, 0))
                self.transcript.info(f"connecting to {_fmt_addr(addr)}")
                sock.connect(addr)
            except TimeoutError:
                sock.close()
                timed_out = True
                errors.append(f"{_fmt_addr(addr)}: timed out after {self.options.timeout:g}s")
                continue
            except OSError as exc:
                sock.close()
                errors.append(f"{_fmt_addr(addr)}: {exc.strerror or exc}")
                continue
            self.peer = addr[:2]
            self.local = sock.getsockname()[:2]
            self.transcript.info(f"connected to {_fmt_addr(addr)} from {_fmt_addr(self.local)}")
            return sock
        detail = "; ".join(errors)
        if len(errors) == 1 and detail.startswith(f"{self.where}: "):
            detail = detail[len(self.where) + 2 :]  # one address, already named in the message
        if timed_out and len(errors) == 1:
            raise NetworkTimeout(f"connect to {self.where} timed out ({detail})")
        raise ConnectError(f"cannot connect to {self.where}: {detail}")

    def open(self, *, greeting: bool = True) -> Reply | None:
        """Connect (plus the implicit TLS handshake) and read the greeting; returns it.

        A greeting that is not 220 is returned too (RFC 5321 3.1: 554 means "no service here");
        callers decide what it means for them. ``greeting=False`` stops after connecting.
        """
        with self.transcript.in_stage("connect"):
            sock = self._connect_socket()
        self.sock = sock
        self.file = None
        if self.options.ehlo_name:
            self.local_hostname = self.options.ehlo_name
        else:
            self.local_hostname = default_ehlo_name(self.local)
        if self.target.tls is TlsMode.IMPLICIT:
            with self.transcript.in_stage("tls"):
                self._handshake()
        if not greeting:
            return None
        with self.transcript.in_stage("banner"):
            self.banner = self.read_reply()
        return self.banner

    def connect(self, host: str = "localhost", port: int = 0, source_address: Any = None) -> Any:
        """smtplib's connect, redirected to ``open`` (the target is fixed at construction)."""
        reply = self.open()
        assert reply is not None
        return reply.code, reply.text.encode()

    # ---- TLS ----------------------------------------------------------------------------

    @property
    def context(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = make_context(self.options.tls)
        return self._context

    @property
    def tls_hostname(self) -> str:
        return self.options.tls.sni or self.target.host

    def _handshake(self) -> TlsInfo:
        assert self.sock is not None
        name = self.tls_hostname
        self._rbuf.clear()
        self.transcript.add("tls", f"TLS handshake (server name {name})")
        try:
            self.sock = self.context.wrap_socket(self.sock, server_hostname=name)
        except ssl.SSLCertVerificationError as exc:
            self.transcript.add("tls", f"certificate verification failed: {exc.verify_message}")
            self.close()
            raise verification_error(exc, self.where) from None
        except TimeoutError:
            self.close()
            raise NetworkTimeout(
                f"TLS handshake with {self.where} timed out after {self.options.timeout:g}s"
            ) from None
        except ssl.SSLError as exc:
            self.close()
            reason = exc.reason or str(exc)
            raise TlsError(f"TLS handshake with {self.where} failed: {reason}") from None
        except OSError as exc:
            self.close()
            raise TlsError(
                f"connection to {self.where} lost during the TLS handshake: {exc.strerror or exc}"
            ) from None
        self.file = None
        sslsock = self.sock
        assert isinstance(sslsock, ssl.SSLSocket)
        self.tls = collect(sslsock, name, self.options.tls, with_chain=self.options.with_chain)
        verified = "certificate verified" if self.tls.verified else (
            f"certificate NOT verified ({self.tls.verify_error})" if self.tls.verify_error
            else "certificate not verified"
        )
        if not self.options.tls.verify:
            verified += f" [verification off: {self.options.tls.unverified_because}]"
        self.transcript.add("tls", f"{self.tls.protocol} {self.tls.cipher}; {verified}")
        if self.tls.leaf is not None:
            self.transcript.add("tls", f"certificate: {self.tls.leaf.subject} "
                                       f"(issuer {self.tls.leaf.issuer})")
        return self.tls

    def start_tls(self) -> TlsInfo:
        """STARTTLS (RFC 3207): command, handshake, and forget what the server said before.

        A refusal (454, 502...) raises ``SmtpReplyError``; callers that treat TLS as optional
        check ``has_extn('starttls')`` first.
        """
        with self.transcript.in_stage("starttls"):
            reply = self.command("STARTTLS")
            if reply.code != 220:
                self.transcript.failed_stage = "starttls"
                raise SmtpReplyError(
                    f"{self.where} refused STARTTLS: {reply.one_line()}", code=reply.code,
                    reply=reply.text,
                )
            if self._pending():
                # RFC 3207 4: after 220 the next bytes are the TLS handshake. Plaintext here is
                # either a broken server or an injection; nothing of it may be trusted. A TLS
                # handshake failure, like the one OpenSSL reports when the bytes come later.
                self.close()
                raise TlsError(
                    f"TLS handshake with {self.where} failed: it sent plaintext after 220 to "
                    "STARTTLS instead of starting TLS"
                )
            info = self._handshake()
        # RFC 3207 4.2: discard everything learnt before TLS; the caller must EHLO again.
        self.helo_resp = None
        self.ehlo_resp = None
        self.esmtp_features = {}
        self.does_esmtp = False
        return info

    # ---- lines out, replies in ----------------------------------------------------------

    def send(  # type: ignore[override]
        self, s: str | bytes, *, command: bool = True, stages: list[str] | None = None,
    ) -> None:
        """Write to the server, recording each line (smtplib calls this for every command).

        ``command`` (the default): these are commands, so every reply the server sent so far
        must have been read; a reply already waiting is unsolicited (see ``_check_in_step``).
        Message content sent line by line passes ``command=False``. ``stages`` tags the lines
        of a pipelined batch one by one (MAIL in ``mail``, each RCPT in ``rcpt``).
        """
        data = s if isinstance(s, bytes) else s.encode("utf-8" if self.utf8_commands else "ascii")
        if command:
            self._check_in_step(data)
        lines = data.split(b"\r\n")[:-1] if data.endswith(b"\r\n") else data.split(b"\r\n")
        for index, line in enumerate(lines):
            stage = stages[index] if stages and index < len(stages) else None
            self.transcript.add("sent", _shown(line.decode("utf-8", "replace")), stage)
        self.send_raw(data)

    def send_raw(self, data: bytes) -> None:
        """Write bytes without recording them (message content; the caller summarises it)."""
        if self.sock is None:
            raise ProtocolError(f"not connected to {self.where} ({self.transcript.stage})")
        try:
            self.sock.sendall(data)
        except TimeoutError:
            self.close()
            raise NetworkTimeout(
                f"sending to {self.where} timed out after {self.options.timeout:g}s during "
                f"{self.transcript.stage}"
            ) from None
        except OSError as exc:
            self.close()
            raise ProtocolError(
                f"{self.where} closed the connection during {self.transcript.stage} "
                f"({exc.strerror or exc})"
            ) from None

    def _pending(self) -> bool:
        """True when reply bytes have arrived that nobody asked to read yet (never blocks)."""
        if self._rbuf:
            return True
        sock = self.sock
        if sock is None:
            return False
        # Bytes OpenSSL has decrypted but not handed out yet are invisible to select().
        # (Duck-typed: a plain socket must not load ssl, which smtpcli/cli/entry.py defers.)
        pending = getattr(sock, "pending", None)
        if pending is not None and pending():
            return True
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return False
        if not readable:
            return False
        try:
            sock.settimeout(0)
            chunk = sock.recv(MAXLINE + 1)
        except (BlockingIOError, ssl.SSLWantReadError, TimeoutError):
            return False
        except OSError:
            return False  # a reset: the write or read that follows reports it
        finally:
            if self.sock is not None:
                self.sock.settimeout(self.options.timeout)
        self._rbuf += chunk
        return bool(chunk)  # b"" is EOF: reported by the read that follows, not as a reply

    def _check_in_step(self, data: bytes) -> None:
        """Before a command (or a pipelined batch) is written, no reply may be waiting.

        RFC 5321 4.2 / RFC 2920 3.1: the server replies to commands, in order. A reply already
        here before the command was sent answers nothing we asked; reading it as the answer to
        the next command would put client and server out of step and could turn a rejection
        into an "accepted".
        """
        if not self._pending():
            return
        first = bytes(self._rbuf.split(b"\n", 1)[0]).rstrip(b"\r")
        self.transcript.add("recv", _shown(first.decode("utf-8", "replace")))
        verb = data.split(b" ", 1)[0].split(b"\r", 1)[0][:20].decode("ascii", "replace")
        self.close()
        raise ProtocolError(
            f"{self.where} replied before the command was sent (before {verb}, during "
            f"{self.transcript.stage}): {first[:60].decode('utf-8', 'replace')!r}"
        )

    def _read_line(self, deadline: float) -> bytes:
        """One line (up to MAXLINE + 1 bytes) by ``deadline``; b"" at EOF.

        The deadline bounds the whole line, not each recv: a peer sending one byte a second
        cannot stretch a reply past the timeout.
        """
        assert self.sock is not None
        while True:
            end = self._rbuf.find(b"\n", 0, MAXLINE + 1)
            if end >= 0 or len(self._rbuf) > MAXLINE:
                cut = end + 1 if end >= 0 else MAXLINE + 1
                line = bytes(self._rbuf[:cut])
                del self._rbuf[:cut]
                return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                line = bytes(self._rbuf)
                self._rbuf.clear()
                return line  # a partial last line, or b"" at EOF
            self._rbuf += chunk

    def command(self, line: str, timeout: float | None = None) -> Reply:
        """Send one command line and read its reply."""
        self.send(line + "\r\n")
        return self.read_reply(timeout)

    def read_reply(self, timeout: float | None = None) -> Reply:
        """Read one complete reply within ``timeout`` (default: the connection's), RFC 5321
        4.2.1 multi-line replies included."""
        if self.sock is None:
            raise ProtocolError(f"not connected to {self.where} ({self.transcript.stage})")
        stage = self.transcript.stage
        timeout = self.options.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        code: int | None = None
        lines: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                raw = self._read_line(deadline)
            except TimeoutError:
                self.close()
                got = " (reply incomplete)" if lines else ""
                raise NetworkTimeout(
                    f"no reply from {self.where} within {timeout:g}s during {stage}{got}"
                ) from None
            except OSError as exc:
                self.close()
                raise ProtocolError(
                    f"connection to {self.where} failed during {stage}: {exc.strerror or exc}"
                ) from None
            if not raw:
                self.close()
                mid = " in the middle of a reply" if lines else ""
                raise ProtocolError(f"{self.where} closed the connection during {stage}{mid}")
            if not raw.endswith(b"\n") and len(raw) <= MAXLINE:
                # EOF in the middle of a line: the reply was never completed.
                self.transcript.add("recv", _shown(raw.decode("utf-8", "replace")))
                self.close()
                raise ProtocolError(
                    f"{self.where} closed the connection in the middle of a reply line during "
                    f"{stage}"
                )
            if len(raw) > MAXLINE:
                self.transcript.add("recv", _shown(raw.decode("utf-8", "replace")))
                self.close()
                raise ProtocolError(
                    f"{self.where} sent a reply line longer than {MAXLINE} bytes during {stage}"
                )
            text = raw.rstrip(b"\r\n")
            self.transcript.add("recv", _shown(text.decode("utf-8", "replace")))
            m = _REPLY_LINE.match(text)
            if m is None:
                self.close()
                shown = text[:60].decode("utf-8", "replace")
                raise ProtocolError(
                    f"{self.where} sent garbage instead of an SMTP reply during {stage}: {shown!r}"
                )
            if code is None:
                code = int(m.group(1))
            elif int(m.group(1)) != code:
                # RFC 5321 4.2.1: every line of a multi-line reply carries the same code.
                self.close()
                raise ProtocolError(
                    f"{self.where} sent a multi-line reply with mixed codes ({code} then "
                    f"{m.group(1).decode()}) during {stage}"
                )
            lines.append(text[4:].decode("utf-8", "replace"))
            if m.group(2) != b"-":
                break
            if len(lines) >= MAX_REPLY_LINES:
                self.close()
                raise ProtocolError(
                    f"{self.where} sent a reply of more than {MAX_REPLY_LINES} lines during {stage}"
                )
        self.sock.settimeout(self.options.timeout)
        reply = Reply(code, tuple(lines))
        self.last_reply = reply
        return reply

    def getreply(self) -> tuple[int, bytes]:
        """smtplib's interface onto ``read_reply`` (used by its ehlo/auth/docmd)."""
        reply = self.read_reply()
        return reply.code, reply.text.encode("utf-8")

    # ---- the greeting and the end ---------------------------------------------------------

    def hello(self) -> Reply:
        """EHLO, falling back to HELO on a 5xx other than 421 (RFC 5321 3.2).

        Capabilities land in ``esmtp_features`` (lower-case keys, smtplib's parser).
        """
        with self.transcript.in_stage("ehlo"):
            code, _ = self.ehlo()
            reply = self.last_reply or Reply(code)
            if 500 <= code < 600:
                reply = self.command(f"HELO {self.local_hostname}")
                if reply.code == 250:
                    self.helo_resp = reply.text.encode()
        return reply

    def capabilities(self) -> dict[str, str]:
        """EHLO keywords (upper-case) and their parameters."""
        return {k.upper(): v.strip() for k, v in self.esmtp_features.items()}

    def quit(self) -> Any:
        """QUIT politely and close; problems while quitting are recorded, never raised."""
        if self.sock is None:
            return None
        reply: Reply | None = None
        with self.transcript.in_stage("quit"):
            try:
                # A hung server must not delay the exit by a full timeout.
                reply = self.command("QUIT", timeout=min(self.options.timeout, 2.0))
            except (ProtocolError, NetworkTimeout, ConnectError) as exc:
                self.transcript.info(f"while quitting: {exc.one_line()}")
            finally:
                self.close()
        return reply

    def close(self) -> None:
        self._rbuf.clear()
        try:
            super().close()
        except OSError:
            pass

    def __enter__(self) -> SmtpConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lines(self) -> Iterator[str]:
        """Transcript lines as text (for logs)."""
        for e in self.transcript.events:
            yield f"{e.t:8.1f} {e.stage:<8} {e.dir:<4} {e.line}"


def _fmt_addr(addr: tuple[Any, ...] | None) -> str:
    if not addr:
        return "?"
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def default_ehlo_name(local: tuple[Any, ...] | None) -> str:
    """The machine's name when it is fully qualified, else an address literal of the local end
    (RFC 5321 4.1.1.1 asks for an FQDN or an address literal; 4.1.3 gives the literal forms)."""
    name = socket.gethostname()
    if "." in name and not name.endswith("."):
        return name
    if local:
        host = str(local[0])
        return f"[IPv6:{host}]" if ":" in host else f"[{host}]"
    return name or "localhost"
