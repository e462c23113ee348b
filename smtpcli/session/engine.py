"""The session engine: one SMTP conversation driven line by line (raw commands and specials).

No terminal code here: the REPL and the scripted mode give it callbacks to show output and to
read more lines or a secret, and render ``Output`` items as they like.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from smtpcli.errors import IncompleteError, SmtpcliError, SmtpReplyError, UsageError
from smtpcli.session.specials import SPECIALS
from smtpcli.session.state import SessionState
from smtpcli.session.text import angle_address, dot_stuff
from smtpcli.smtp.connection import ConnectOptions, SmtpConnection
from smtpcli.smtp.reply import Reply
from smtpcli.smtp.target import Target, parse_target
from smtpcli.smtp.transcript import Event, Transcript


@dataclass(frozen=True)
class Output:
    """Something to show: ``kind`` is sent, recv, tls, info (transcript events), note, error,
    explain or cert."""

    kind: str
    text: str
    code: int | None = None


Emit = Callable[[Output], None]
ReadLine = Callable[[str], "str | None"]


class Session:
    """Drives one conversation; ``handle(line)`` runs a raw command or a special."""

    def __init__(
        self,
        target: Target | None,
        options: ConnectOptions,
        *,
        emit: Emit,
        read_line: ReadLine,
        read_secret: ReadLine,
        explain: Callable[[Reply], str | None] | None = None,
    ) -> None:
        self.target = target
        self.options = options
        self.emit = emit
        self.read_line = read_line
        self.read_secret = read_secret
        self.explainer = explain
        self.state = SessionState()
        self.transcript = Transcript(redact_secrets=not options.show_secrets)
        self.transcript.listeners.append(self._on_event)
        self.conn: SmtpConnection | None = None
        self.done = False
        self.last_reply: Reply | None = None
        self.last_error: SmtpcliError | None = None
        self.closed_by_server = False  # the last reply was 421 (RFC 5321 3.8)

    # ---- output -------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        code = None
        if event.dir == "recv" and event.line[:3].isdigit():
            code = int(event.line[:3])
        self.emit(Output(event.dir, event.line, code))

    def info(self, text: str) -> None:
        self.emit(Output("note", text))

    def error(self, text: str) -> None:
        self.emit(Output("error", text))

    def _replied(self, reply: Reply) -> Reply:
        self.last_reply = reply
        self.last_error = None
        self.state.last_code = reply.code
        if reply.code >= 400 and self.explainer is not None:
            text = self.explainer(reply)
            if text:
                self.emit(Output("explain", text, reply.code))
        if reply.code == 421 and self.conn is not None:
            # RFC 5321 3.8: 421 means the server is closing the channel; nothing more may be
            # sent on it (a script stops here instead of failing on every later line).
            self.conn.close()
            self.conn = None
            self.state.disconnected()
            self.closed_by_server = True
            self.info("the server closed the session (421): .connect reconnects")
        return reply

    def _failed(self, exc: SmtpcliError) -> None:
        """Report a failure; connection-level failures leave the session disconnected."""
        self.error(exc.one_line())
        if isinstance(exc, IncompleteError):
            self.last_error = exc
            if self.conn is None or self.conn.sock is None:
                self._lost()

    def _lost(self) -> None:
        if self.state.connected:
            self.error("connection lost: .connect reconnects")
        self.state.disconnected()
        self.conn = None

    # ---- dispatch -----------------------------------------------------------------------

    def handle(self, line: str) -> None:
        """Run one input line."""
        if self.state.in_data:
            self._data_line(line)
            return
        if self.state.in_auth:
            self._auth_answer(line)
            return
        stripped = line.strip()
        if not stripped:
            return
        if stripped.startswith(".") and not stripped.startswith(".."):
            try:
                words = shlex.split(stripped)
            except ValueError as exc:
                self.error(f"cannot parse {stripped!r}: {exc}")
                return
            entry = SPECIALS.get(words[0].lower())
            if entry is None:
                self.error(f"unknown special command {words[0]} (try .help)")
                return
            try:
                entry.func(self, words[1:])
            except SmtpcliError as exc:
                self._failed(exc)
            return
        # ".." escapes a raw line that starts with a dot.
        self.raw(stripped[1:] if stripped.startswith("..") else line.rstrip("\r\n"))

    def _need_conn(self) -> SmtpConnection | None:
        if self.conn is None or self.conn.sock is None:
            self.error("not connected: use .connect [TARGET]")
            self.last_error = IncompleteError("not connected")
            return None
        return self.conn

    # ---- raw commands -------------------------------------------------------------------

    def raw(self, line: str) -> Reply | None:
        """Send ``line`` as typed and read the reply; STARTTLS, EHLO, AUTH and DATA keep the
        session state in step (TLS handshake after 220, capabilities, secrets, message mode)."""
        conn = self._need_conn()
        if conn is None:
            return None
        verb = line.strip().split(" ", 1)[0].upper()
        if not line.isascii():
            if "SMTPUTF8" not in self.state.capabilities:
                # RFC 6531 3.2: UTF-8 in commands only once the server has offered SMTPUTF8.
                self.error("not sent: the line has non-ASCII characters and the server did not "
                           "offer SMTPUTF8 (RFC 6531); EHLO first, or use an ASCII address")
                return None
            conn.utf8_commands = True
        try:
            if verb == "STARTTLS":
                return self.starttls(ehlo_after=False)
            if verb == "AUTH":
                with self.transcript.secret():
                    reply = conn.command(line)
                self.state.in_auth = reply.code == 334
                return self._replied(reply)
            with self.transcript.in_stage(_stage_for(verb, self.transcript.stage)):
                reply = conn.command(line)
            if verb in ("EHLO", "HELO"):
                self._learn_hello(conn, verb, reply)
            elif verb == "DATA" and reply.code == 354:
                self.state.in_data = True
                self.info("enter the message; end with a line containing only '.'")
            elif verb == "QUIT":
                conn.close()
                self.state.disconnected()
                self.conn = None
            return self._replied(reply)
        except SmtpcliError as exc:
            self._failed(exc)
            return None

    def _learn_hello(self, conn: SmtpConnection, verb: str, reply: Reply) -> None:
        if reply.code != 250:
            return
        self.state.set_capabilities(list(reply.lines) if verb == "EHLO" else [])
        # Keep smtplib's view in step, so smtplib's AUTH helpers see the same capabilities.
        conn.ehlo_resp = reply.text.encode() if verb == "EHLO" else None
        conn.helo_resp = reply.text.encode() if verb == "HELO" else None
        conn.does_esmtp = verb == "EHLO"
        conn.esmtp_features = {k.lower(): v for k, v in self.state.capabilities.items()}

    def _data_line(self, line: str) -> None:
        conn = self._need_conn()
        if conn is None:
            self.state.in_data = False
            return
        text = line.rstrip("\r\n")
        # RFC 5321 4.5.2: a content line starting with "." gets one more, as .data does;
        # only the lone "." typed by the user ends the message.
        wire = "." + text if text.startswith(".") and text != "." else text
        try:
            with self.transcript.in_stage("data"):
                conn.send((wire + "\r\n").encode("utf-8"), command=False)
                if text == ".":
                    self.state.in_data = False
                    self._replied(conn.read_reply())
        except SmtpcliError as exc:
            self.state.in_data = False
            self._failed(exc)

    def _auth_answer(self, line: str) -> None:
        conn = self._need_conn()
        if conn is None:
            self.state.in_auth = False
            return
        if not line.isascii():
            # RFC 4954 4: answers to a challenge are base64, so ASCII; nothing else is sent.
            self.error("not sent: an AUTH answer is base64 (ASCII only); '*' cancels")
            return
        try:
            with self.transcript.in_stage("auth"), self.transcript.secret():
                reply = conn.command(line.rstrip("\r\n"))
        except SmtpcliError as exc:
            self.state.in_auth = False
            self._failed(exc)
            return
        self.state.in_auth = reply.code == 334
        self._replied(reply)

    # ---- helpers behind the specials ----------------------------------------------------

    def connect(self, text: str | None = None) -> Reply | None:
        if text:
            self.target = parse_target(text)
        if self.target is None:
            raise UsageError("no target: .connect HOST[:PORT]")
        if self.conn is not None:
            self.conn.close()
        self.state.disconnected()
        self.closed_by_server = False
        self.conn = SmtpConnection(self.target, self.options, self.transcript)
        try:
            banner = self.conn.open()
        except SmtpcliError as exc:
            self.conn = None
            self.error(exc.one_line())
            self.last_error = exc
            return None
        self.state.connected = True
        self.state.host = self.target.host
        self.state.tls = self.conn.tls is not None
        if self.conn.tls is not None:
            self._cert_summary()
        return self._replied(banner) if banner is not None else None

    def ehlo(self, name: str | None = None) -> Reply | None:
        conn = self._need_conn()
        if conn is None:
            return None
        return self.raw(f"EHLO {name or conn.local_hostname}")

    def starttls(self, *, ehlo_after: bool) -> Reply | None:
        conn = self._need_conn()
        if conn is None:
            return None
        if self.state.tls:
            self.info("already in TLS (RFC 3207 4.2: STARTTLS is not repeated)")
        try:
            conn.start_tls()
        except SmtpReplyError:
            return self._replied(conn.last_reply or Reply(0))
        except SmtpcliError as exc:
            self._failed(exc)
            return None
        self.state.tls = True
        self.state.capabilities = {}
        reply = self._replied(Reply(220, ("TLS started",)) if conn.last_reply is None
                              else conn.last_reply)
        self._cert_summary()
        if ehlo_after:
            self.ehlo()
        else:
            self.info("send EHLO again: capabilities before TLS no longer count (RFC 3207 4.2)")
        return reply

    def auth(self, mechanism: str, user: str) -> None:
        from smtpcli.smtp.auth import TOKEN_MECHANISMS, Credentials, authenticate

        conn = self._need_conn()
        if conn is None:
            return
        mech = mechanism.upper()
        offered = self.state.auth_mechanisms
        if offered and mech not in offered:
            self.error(f"the server does not offer AUTH {mech} (it offers {' '.join(offered)})")
            return
        is_token = mech in TOKEN_MECHANISMS
        secret = self.read_secret("Token: " if is_token else "Password: ")
        if secret is None:
            self.error("no password given: AUTH not sent")
            return
        creds = Credentials(user, token=secret) if is_token else Credentials(user, password=secret)
        try:
            self._replied(authenticate(conn, mech, creds))
        except SmtpReplyError:
            self._replied(conn.last_reply or Reply(535))
        except SmtpcliError as exc:
            self._failed(exc)

    def data(self, path: str | None) -> Reply | None:
        if path:
            try:
                body = Path(path).read_bytes()
            except OSError as exc:
                self.error(f"cannot read {path}: {exc.strerror or exc}")
                return None
        else:
            self.info("enter the message; end with a line containing only '.'")
            lines: list[str] = []
            while True:
                line = self.read_line("data> ")
                if line is None or line.rstrip("\r\n") == ".":
                    break
                lines.append(line.rstrip("\r\n"))
            body = ("\n".join(lines) + "\n").encode("utf-8")
        return self.send_body(body)

    def send_body(self, body: bytes) -> Reply | None:
        """DATA, the dot-stuffed body, the final dot (RFC 5321 4.1.1.4, 4.5.2)."""
        conn = self._need_conn()
        if conn is None:
            return None
        reply = self.raw("DATA")
        self.state.in_data = False
        if reply is None or reply.code != 354:
            return reply
        payload = dot_stuff(body)
        try:
            lines = payload.count(b"\r\n")
            with self.transcript.in_stage("data"):
                self.transcript.info(f"[message: {lines} lines, {len(payload)} bytes]")
                conn.send_raw(payload)
                conn.send(".\r\n", command=False)
                return self._replied(conn.read_reply())
        except SmtpcliError as exc:
            self._failed(exc)
            return None

    def send_test(self, sender: str | None, recipient: str | None) -> None:
        sender = sender or self.read_line("From: ")
        recipient = recipient or self.read_line("To: ")
        if not sender or not recipient:
            self.error("a test message needs a sender and a recipient")
            return
        if self.state.capabilities == {} and self.conn is not None and not self.conn.helo_resp:
            self.ehlo()
        for line in (f"MAIL FROM:{angle_address(sender)}", f"RCPT TO:{angle_address(recipient)}"):
            reply = self.raw(line)
            if reply is None or reply.code >= 400:
                return
        self.send_body(test_message(sender.strip("<>"), recipient.strip("<>"),
                                    self.target.display if self.target else "?"))

    def quit(self) -> None:
        if self.conn is not None and self.conn.sock is not None:
            reply = self.conn.quit()
            if reply is not None:
                self._replied(reply)
        self.conn = None
        self.state.disconnected()
        self.done = True

    def _cert_summary(self) -> None:
        tls = self.conn.tls if self.conn else None
        if tls is None:
            return
        leaf = tls.leaf
        verdict = "verified" if tls.verified else f"NOT verified: {tls.verify_error}"
        match = {True: "name matches", False: "name does NOT match", None: "name not checked"}
        lines = [f"TLS {tls.protocol} {tls.cipher}; certificate {verdict}; "
                 f"{match[tls.hostname_match]} {tls.server_name}"]
        if leaf is not None:
            lines.append(f"subject {leaf.subject}; issuer {leaf.issuer}; "
                         f"valid until {leaf.not_after}")
        self.emit(Output("cert", "\n".join(lines)))

    def show_cert(self) -> None:
        tls = self.conn.tls if self.conn else None
        if tls is None:
            self.error("no TLS yet: .starttls first (or connect with smtps://)")
            return
        self._cert_summary()
        for depth, cert in enumerate(tls.chain):
            self.emit(Output("cert", f"[{depth}] {cert.subject}\n    issuer {cert.issuer}\n"
                                     f"    SANs {', '.join(cert.sans) or '-'}\n"
                                     f"    {cert.not_before} .. {cert.not_after}\n"
                                     f"    sha256 {cert.sha256}"))

    def show_transcript(self, path: str | None) -> None:
        lines = [f"{e.t:9.1f} {e.stage:<8} {e.dir:<4} {e.line}" for e in self.transcript.events]
        if path:
            try:
                Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
            except OSError as exc:
                self.error(f"cannot write {path}: {exc.strerror or exc}")
                return
            self.info(f"transcript written to {path} ({len(lines)} lines)")
        else:
            self.info("\n".join(lines))

    def explain_code(self, text: str) -> None:
        from smtpcli.session.explain import explain_text

        self.emit(Output("explain", explain_text(text) or f"nothing known about {text}"))


def _stage_for(verb: str, current: str) -> str:
    return {
        "EHLO": "ehlo", "HELO": "ehlo", "MAIL": "mail", "RCPT": "rcpt", "DATA": "data",
        "BDAT": "data", "QUIT": "quit",
    }.get(verb, current)


def test_message(sender: str, recipient: str, server: str) -> bytes:
    """A recognisable test message: who, what, when and through which server."""
    import email.utils
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = f"smtpcli session test {email.utils.formatdate(localtime=True)}"
    msg["Date"] = email.utils.formatdate(localtime=True)
    msg["Message-ID"] = email.utils.make_msgid(domain="smtpcli.invalid")
    msg.set_content(
        f"This is a test message sent by hand with smtpcli session\n"
        f"from {sender} to {recipient} through {server}.\n"
    )
    return msg.as_bytes()
