"""The message to send: the default test message, a MIME message built from parts, or a ready
message read from a file.

Built messages use CRLF line endings and RFC 2047 encoded words for non-ASCII header text; only
when an address itself is non-ASCII (RFC 6531) are headers written as raw UTF-8 (RFC 6532), and
then the message needs SMTPUTF8. Non-ASCII bodies are quoted-printable when mostly ASCII (they
stay readable in transcripts) and base64 when mostly not, unless ``eight_bit``; either way they
pass servers without 8BITMIME.
"""

from __future__ import annotations

import os
import re
import socket
import time
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, parseaddr

from smtpcli import __version__
from smtpcli.errors import UsageError
from smtpcli.records import Record

_ADDR = re.compile(r"^[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+$")


def check_address(address: str, what: str, *, allow_empty: bool = False) -> str:
    """A bare ``local@domain`` mailbox (RFC 5321 4.1.2, simplified); UsageError otherwise.

    ``allow_empty`` admits the null reverse-path ``<>`` (RFC 5321 4.5.5: bounces).
    """
    addr = address.strip()
    if addr.startswith("<") and addr.endswith(">"):
        addr = addr[1:-1]
    if allow_empty and addr == "":
        return ""
    if not _ADDR.match(addr) or addr.startswith(".") or ".." in addr.split("@")[0]:
        raise UsageError(f"malformed {what} address {address!r}: expected local-part@domain")
    domain = addr.rsplit("@", 1)[1]
    if domain.startswith("[") is False and (domain.startswith(".") or domain.endswith(".") or ".." in domain):
        raise UsageError(f"malformed domain in {what} address {address!r}")
    return addr


def header_address(text: str, what: str) -> tuple[str, str]:
    """``Name <a@b>`` or ``a@b`` -> (display name, checked address)."""
    name, addr = parseaddr(text)
    if not addr:
        raise UsageError(f"malformed {what} address {text!r}")
    return name, check_address(addr, what)


def needs_smtputf8(*addresses: str) -> bool:
    """RFC 6531: a non-ASCII mailbox needs the SMTPUTF8 extension."""
    return any(not a.isascii() for a in addresses)


class MessageSpec(Record):
    """What to put in the message (see the ``send`` options of the same names)."""

    __slots__ = ("from_header", "to", "cc", "subject", "body", "html", "attachments", "inline",
                 "headers", "charset", "eight_bit", "server")

    def __init__(self, from_header: str, to: list[str] | None = None,
                 cc: list[str] | None = None, subject: str | None = None,
                 body: str | None = None, html: str | None = None,
                 attachments: list[str] | None = None, inline: list[str] | None = None,
                 headers: list[tuple[str, str]] | None = None, charset: str = "utf-8",
                 eight_bit: bool = False, server: str | None = None) -> None:
        self.from_header = from_header
        self.to: list[str] = [] if to is None else to
        self.cc: list[str] = [] if cc is None else cc
        self.subject = subject
        self.body = body
        self.html = html
        self.attachments: list[str] = [] if attachments is None else attachments
        self.inline: list[str] = [] if inline is None else inline
        self.headers: list[tuple[str, str]] = [] if headers is None else headers
        self.charset = charset
        self.eight_bit = eight_bit
        self.server = server  # shown in the default test body


class BuiltMessage(Record):
    """Wire-ready bytes (CRLF) plus what the transaction needs to know about them."""

    __slots__ = ("data", "message_id", "smtputf8", "eight_bit")

    def __init__(self, data: bytes, message_id: str | None, smtputf8: bool,
                 eight_bit: bool) -> None:
        self.data = data
        self.message_id = message_id
        self.smtputf8 = smtputf8
        self.eight_bit = eight_bit

    @property
    def size(self) -> int:
        return len(self.data)

    def to_dict(self) -> dict[str, object]:
        return {"size": self.size, "message_id": self.message_id, "smtputf8": self.smtputf8,
                "8bit": self.eight_bit}


def parse_header_option(text: str) -> tuple[str, str]:
    """``--header 'Name: value'`` -> (name, value), checked against RFC 5322 2.2."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or not all(33 <= ord(c) <= 126 and c != ":" for c in name):
        raise UsageError(f"malformed header {text!r}: expected 'Name: value'")
    if "\n" in value or "\r" in value:
        raise UsageError(f"header {name!r} contains a line break")
    return name, value.strip()


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1] if "@" in address else "localhost"


def default_body(spec: MessageSpec, date: str, message_id: str) -> str:
    """The default test text: who, what, when, so a received test mail is recognisable."""
    recipients = ", ".join(spec.to + spec.cc) or "(none in the headers)"
    return (
        f"This is a test message sent by smtpcli {__version__}.\n"
        "\n"
        f"  from:        {spec.from_header}\n"
        f"  to:          {recipients}\n"
        f"  sent at:     {date}\n"
        f"  sent from:   {socket.gethostname()}\n"
        f"  via:         {spec.server or 'the recipient domain MX'}\n"
        f"  message-id:  {message_id}\n"
        "\n"
        "If you can read this, mail from that sender to this mailbox works.\n"
    )


def new_message_id(domain: str) -> str:
    """A unique Message-ID (RFC 5322 3.6.4) in email.utils.make_msgid's layout.

    make_msgid draws its number from ``random``, a module a send otherwise never loads; and
    without a domain it calls getfqdn() (a DNS lookup), so the domain is always given."""
    unique = int.from_bytes(os.urandom(8), "big")
    return f"<{time.time_ns() // 10_000_000}.{os.getpid()}.{unique}.smtpcli@{domain}>"


def build_message(spec: MessageSpec) -> BuiltMessage:
    """Build the MIME message for ``spec`` (files that cannot be read are usage errors)."""
    _, from_addr = header_address(spec.from_header, "From")
    all_addrs = [from_addr] + [a for _, a in getaddresses(spec.to + spec.cc)]
    utf8 = needs_smtputf8(*all_addrs)
    policy = email_policy.SMTPUTF8 if utf8 else email_policy.SMTP
    # cte_type 7bit makes non-ASCII text quoted-printable (safe without 8BITMIME).
    policy = policy.clone(cte_type="8bit" if spec.eight_bit else "7bit")
    msg = EmailMessage(policy=policy)
    date = formatdate(localtime=True)
    domain = _domain_of(from_addr)
    if not utf8 and not domain.isascii():  # the idna codec is imported only when needed
        domain = domain.encode("idna").decode()
    message_id = new_message_id(domain)
    msg["Date"] = date
    msg["From"] = spec.from_header
    if spec.to:
        msg["To"] = ", ".join(spec.to)
    if spec.cc:
        msg["Cc"] = ", ".join(spec.cc)
    msg["Subject"] = spec.subject if spec.subject is not None else f"smtpcli test {date}"
    msg["Message-ID"] = message_id
    msg["X-Mailer"] = f"smtpcli {__version__}"
    text = spec.body if spec.body is not None else (
        default_body(spec, date, message_id) if spec.html is None else None
    )
    if text is not None:
        msg.set_content(text, charset=_charset(text, spec.charset), cte=_cte(text, spec))
    if spec.html is not None:
        html_cte = _cte(spec.html, spec)
        if text is None:
            msg.set_content(spec.html, subtype="html", charset=_charset(spec.html, spec.charset),
                            cte=html_cte)
        else:
            msg.add_alternative(spec.html, subtype="html",
                                charset=_charset(spec.html, spec.charset), cte=html_cte)
    for path in spec.inline:
        _attach(msg, path, inline=True)
    for path in spec.attachments:
        _attach(msg, path, inline=False)
    for name, value in spec.headers:
        del msg[name]
        msg[name] = value
    data = msg.as_bytes(policy=policy)
    return BuiltMessage(data, message_id, utf8, _has_8bit(data))


def _charset(text: str, wanted: str) -> str:
    return "us-ascii" if text.isascii() else wanted


def _cte(text: str, spec: MessageSpec) -> str | None:
    """Quoted-printable for mostly-ASCII text (readable in a transcript), base64 when most of
    it is not ASCII (shorter); None lets the library choose (ASCII text, or --8bit)."""
    if text.isascii() or spec.eight_bit:
        return None
    ascii_share = sum(c.isascii() for c in text) / len(text)
    return "quoted-printable" if ascii_share >= 0.5 else "base64"


def _attach(msg: EmailMessage, path: str, *, inline: bool) -> None:
    import mimetypes

    data = _read(path, "inline image" if inline else "attachment")
    ctype, encoding = mimetypes.guess_type(path)
    if ctype is None or encoding is not None:
        ctype = "application/octet-stream"
    maintype, subtype = ctype.split("/", 1)
    name = os.path.basename(path)
    if inline:
        # Referenced from the HTML as <img src="cid:NAME">: the Content-ID is the file name.
        cid = f"<{name}>"
        related = next((p for p in msg.walk() if p.get_content_type() == "multipart/related"), None)
        if related is None:
            html = msg.get_body(("html",))
            if isinstance(html, EmailMessage):
                html.make_related()
                related = html
        if isinstance(related, EmailMessage):
            related.add_related(data, maintype=maintype, subtype=subtype, cid=cid,
                                filename=name, disposition="inline")
        else:  # no HTML part to refer to it: an inline attachment
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name,
                               disposition="inline", cid=cid)
        return
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)


def _has_8bit(data: bytes) -> bool:
    return any(b > 127 for b in data)


def normalise_crlf(data: bytes) -> bytes:
    """Bare LF or CR -> CRLF (RFC 5321 2.3.8: only CRLF ends a line; bare ones enable smuggling)."""
    data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def load_message(data: bytes, headers: list[tuple[str, str]] | None = None) -> BuiltMessage:
    """A ready message (``--data``): line endings normalised, ``--header`` values applied on top."""
    if not data.strip():
        raise UsageError("the message given with --data is empty")
    data = normalise_crlf(data)
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, body = data.rstrip(b"\r\n"), b""
    lines = head.split(b"\r\n")
    for name, value in headers or []:
        lines = _drop_header(lines, name.encode())
        lines.insert(0, f"{name}: {value}".encode())
    head = b"\r\n".join(lines)
    data = head + b"\r\n\r\n" + body
    msgid = None
    m = re.search(rb"(?im)^message-id:[ \t]*(.*?)\r\n", head + b"\r\n")
    if m:
        msgid = m.group(1).decode("utf-8", "replace").strip()
    return BuiltMessage(data, msgid, smtputf8=_has_8bit(head), eight_bit=_has_8bit(data))


def _drop_header(lines: list[bytes], name: bytes) -> list[bytes]:
    out: list[bytes] = []
    skipping = False
    prefix = name.lower() + b":"
    for line in lines:
        if line[:1] in (b" ", b"\t") and skipping:
            continue  # a folded continuation of the dropped header
        skipping = line.lower().startswith(prefix)
        if not skipping:
            out.append(line)
    return out
