"""One mail transaction on an open connection: MAIL, RCPT..., then DATA or BDAT (RFC 5321 3.3).

ESMTP extensions are used when the server advertises them and asked for explicitly they are
checked first (a clear ``NotAdvertisedError`` instead of a confusing 5xx):

* PIPELINING (RFC 2920): MAIL and every RCPT go out in one write, replies are read in order.
* SIZE (RFC 1870): ``SIZE=<octets>`` on MAIL.
* 8BITMIME (RFC 6152): ``BODY=8BITMIME`` when the message has 8-bit octets.
* SMTPUTF8 (RFC 6531): for non-ASCII addresses or UTF-8 headers.
* DSN (RFC 3461): ``RET``/``ENVID`` on MAIL, ``NOTIFY``/``ORCPT`` on RCPT.
* CHUNKING (RFC 3030): BDAT chunks instead of DATA (smtplib has no BDAT; done here).
* REQUIRETLS (RFC 8689): only over TLS.

Rejections are results (``TransactionResult``), not exceptions; protocol failures raise.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from smtpcli.errors import UsageError
from smtpcli.records import FrozenRecord, Record
from smtpcli.smtp.auth import NotAdvertisedError
from smtpcli.smtp.reply import Reply

if TYPE_CHECKING:
    from smtpcli.smtp.connection import SmtpConnection

# How many header lines of the message go into the transcript (the rest is summarised).
SHOWN_CONTENT_LINES = 40
DSN_NOTIFY = {"NEVER", "SUCCESS", "FAILURE", "DELAY"}


class Envelope(FrozenRecord):
    """The SMTP envelope (RFC 5321 2.3.1): reverse-path and forward-paths."""

    __slots__ = ("mail_from", "recipients")
    mail_from: str
    recipients: tuple[str, ...]

    def __init__(self, mail_from: str, recipients: tuple[str, ...]) -> None:
        self._set(mail_from=mail_from, recipients=recipients)


class TransactionOptions(FrozenRecord):
    """ESMTP choices for one transaction (the ``send`` options of the same names)."""

    __slots__ = ("pipelining", "bdat", "chunk_size", "dsn_notify", "dsn_ret", "envid", "orcpt",
                 "requiretls", "mail_params", "rcpt_params", "quit_after")
    pipelining: bool  # use PIPELINING when advertised
    bdat: bool
    chunk_size: int  # BDAT chunk size; 0 = one chunk
    dsn_notify: str | None  # e.g. "SUCCESS,FAILURE" or "NEVER"
    dsn_ret: str | None  # FULL | HDRS
    envid: str | None
    orcpt: bool  # with DSN: ORCPT=rfc822;<addr> on each RCPT
    requiretls: bool
    mail_params: tuple[str, ...]
    rcpt_params: tuple[str, ...]
    quit_after: str | None  # "mail" or "rcpt": stop before the content

    def __init__(self, pipelining: bool = True, bdat: bool = False, chunk_size: int = 0,
                 dsn_notify: str | None = None, dsn_ret: str | None = None,
                 envid: str | None = None, orcpt: bool = True, requiretls: bool = False,
                 mail_params: tuple[str, ...] = (), rcpt_params: tuple[str, ...] = (),
                 quit_after: str | None = None) -> None:
        self._set(pipelining=pipelining, bdat=bdat, chunk_size=chunk_size,
                  dsn_notify=dsn_notify, dsn_ret=dsn_ret, envid=envid, orcpt=orcpt,
                  requiretls=requiretls, mail_params=mail_params, rcpt_params=rcpt_params,
                  quit_after=quit_after)


class RecipientResult(Record):
    __slots__ = ("address", "reply")

    def __init__(self, address: str, reply: Reply) -> None:
        self.address = address
        self.reply = reply

    @property
    def accepted(self) -> bool:
        return self.reply.code in (250, 251, 252)

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "accepted": self.accepted, "reply": self.reply.to_dict()}


class TransactionResult(Record):
    """What each step answered; ``data_reply`` is None when the content was never sent."""

    __slots__ = ("mail_reply", "recipients", "data_reply", "queue_id", "mail_params", "pipelined",
                 "method", "stopped_after", "closed_by_server")

    def __init__(self, mail_params: list[str] | None = None, method: str = "DATA") -> None:
        self.mail_reply: Reply | None = None
        self.recipients: list[RecipientResult] = []
        self.data_reply: Reply | None = None
        self.queue_id: str | None = None
        self.mail_params: list[str] = [] if mail_params is None else mail_params
        self.pipelined = False
        self.method = method
        self.stopped_after: str | None = None
        self.closed_by_server = False  # a 421 ended the session (RFC 5321 3.8)

    @property
    def accepted(self) -> list[RecipientResult]:
        return [r for r in self.recipients if r.accepted]

    @property
    def rejected(self) -> list[RecipientResult]:
        return [r for r in self.recipients if not r.accepted]

    @property
    def delivered(self) -> bool:
        return self.data_reply is not None and self.data_reply.code == 250

    def to_dict(self) -> dict[str, Any]:
        return {
            "mail": self.mail_reply.to_dict() if self.mail_reply else None,
            "mail_params": self.mail_params,
            "recipients": [r.to_dict() for r in self.recipients],
            "content": {"method": self.method,
                        "reply": self.data_reply.to_dict() if self.data_reply else None},
            "queue_id": self.queue_id, "pipelined": self.pipelined,
            "stopped_after": self.stopped_after,
        }


# (words one of which a match must contain, pattern). A pattern is compiled (by re's cache)
# only when the reply holds one of its words: a plain "250 2.0.0 Ok" compiles one, not five.
_QUEUE_ID_PATTERNS = [
    (("queued as",), r"queued as ([A-Za-z0-9._\-]+)"),  # Postfix, Exchange-ish
    (("id=",), r"\bid=([A-Za-z0-9._\-]+)"),  # Exim
    (("gsmtp",), r"\bOK\s+(\d+ [A-Za-z0-9._\-]+) - gsmtp"),  # Gmail
    (("message accepted for delivery",),
     r"Message accepted for delivery.*?<?([A-Za-z0-9._\-]+@[^>\s]+)>?"),
    (("ok", "queued", "accepted"),
     r"\b(?:Ok|queued|accepted)[:\s]+([A-Za-z0-9]{8,}[A-Za-z0-9._\-]*)\s*$"),
]

# What re.I matches that str.lower() does not bring to these ASCII words: dotless i, long s,
# and the dot that "İ".lower() leaves after the i.
_FOLD = {0x131: "i", 0x17F: "s", 0x307: None}


def queue_id(reply: Reply) -> str | None:
    """The server's queue id from the final 250 (formats of the common MTAs), if any."""
    text = " ".join(reply.lines)
    folded = text.lower().translate(_FOLD)
    for words, pattern in _QUEUE_ID_PATTERNS:
        if not any(w in folded for w in words):
            continue
        m = re.search(pattern, text, re.I)
        if m:
            return m.group(1)
    return None


def xtext(value: str) -> str:
    """RFC 3461 4: xtext-encode (+XX for '+', '=', and characters outside 33..126)."""
    return "".join(
        c if 33 <= ord(c) <= 126 and c not in "+=" else "".join(f"+{b:02X}" for b in c.encode())
        for c in value
    )


def check_param(text: str, what: str) -> str:
    """``KEYWORD[=VALUE]`` per RFC 5321 4.1.2 esmtp-param."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*(=[\x21-\x3c\x3e-\x7e]+)?", text):
        raise UsageError(f"malformed {what} {text!r}: expected KEYWORD or KEYWORD=VALUE")
    return text


def mail_parameters(
    conn: SmtpConnection, size: int | None, *, eight_bit: bool, smtputf8: bool,
    options: TransactionOptions,
) -> list[str]:
    """Parameters for MAIL FROM, checked against what the server advertises."""
    caps = conn.capabilities()
    params: list[str] = []
    if "SIZE" in caps and size is not None:
        params.append(f"SIZE={size}")
    if eight_bit:
        if "8BITMIME" not in caps and not ("BINARYMIME" in caps and options.bdat):
            raise NotAdvertisedError(
                f"the message has 8-bit content but {conn.where} does not advertise 8BITMIME "
                "(RFC 6152)", hint="re-encode it, or build it without --8bit",
            )
        params.append("BODY=8BITMIME")
    if smtputf8:
        if "SMTPUTF8" not in caps:
            raise NotAdvertisedError(
                f"non-ASCII addresses or headers need SMTPUTF8, which {conn.where} does not "
                "advertise (RFC 6531)"
            )
        params.append("SMTPUTF8")
    if options.dsn_ret or options.envid or options.dsn_notify:
        if "DSN" not in caps:
            raise NotAdvertisedError(f"{conn.where} does not advertise DSN (RFC 3461)")
        if options.dsn_ret:
            params.append(f"RET={options.dsn_ret.upper()}")
        if options.envid:
            params.append(f"ENVID={xtext(options.envid)}")
    if options.requiretls:
        if "REQUIRETLS" not in caps:
            raise NotAdvertisedError(f"{conn.where} does not advertise REQUIRETLS (RFC 8689)")
        if conn.tls is None:
            raise NotAdvertisedError("REQUIRETLS needs a TLS session (RFC 8689 4.1)")
        params.append("REQUIRETLS")
    if options.bdat and "CHUNKING" not in caps:
        raise NotAdvertisedError(f"{conn.where} does not advertise CHUNKING, needed for --bdat "
                                 "(RFC 3030)")
    params.extend(check_param(p, "--mail-param") for p in options.mail_params)
    return params


def rcpt_parameters(address: str, options: TransactionOptions) -> list[str]:
    params: list[str] = []
    if options.dsn_notify:
        params.append(f"NOTIFY={options.dsn_notify.upper()}")
        if options.orcpt:
            # RFC 3461 4.2: ORCPT=addr-type;xtext
            params.append(f"ORCPT=rfc822;{xtext(address)}")
    params.extend(check_param(p, "--rcpt-param") for p in options.rcpt_params)
    return params


def _cmd(verb: str, address: str, params: list[str]) -> str:
    return f"{verb}:<{address}>" + "".join(f" {p}" for p in params)


def run_transaction(
    conn: SmtpConnection, envelope: Envelope, content: bytes | None, *,
    eight_bit: bool = False, smtputf8: bool = False,
    options: TransactionOptions | None = None,
) -> TransactionResult:
    """MAIL, RCPT for each recipient, then the content (unless ``quit_after`` or no recipient
    was accepted). The caller QUITs."""
    opts = options or TransactionOptions()
    smtputf8 = smtputf8 or not all(a.isascii() for a in (envelope.mail_from, *envelope.recipients))
    size = len(content) if content is not None else None
    params = mail_parameters(conn, size, eight_bit=eight_bit, smtputf8=smtputf8, options=opts)
    conn.utf8_commands = smtputf8
    result = TransactionResult(mail_params=params, method="BDAT" if opts.bdat else "DATA")
    mail_cmd = _cmd("MAIL FROM", envelope.mail_from, params)
    rcpt_cmds = [
        (rcpt, _cmd("RCPT TO", rcpt, rcpt_parameters(rcpt, opts)))
        for rcpt in envelope.recipients
    ]
    pipelined = opts.pipelining and "PIPELINING" in conn.capabilities() and opts.quit_after != "mail"
    result.pipelined = pipelined
    if pipelined:
        # RFC 2920 3.1: MAIL and RCPT may be sent together; replies come back in order.
        with conn.transcript.in_stage("mail"):
            batch = [mail_cmd] + [c for _, c in rcpt_cmds]
            conn.send("".join(f"{line}\r\n" for line in batch),
                      stages=["mail"] + ["rcpt"] * len(rcpt_cmds))
            result.mail_reply = conn.read_reply()
        if _closing(result, result.mail_reply):
            return result
        with conn.transcript.in_stage("rcpt"):
            for rcpt, _ in rcpt_cmds:
                result.recipients.append(RecipientResult(rcpt, conn.read_reply()))
                if _closing(result, result.recipients[-1].reply):
                    return result
    else:
        with conn.transcript.in_stage("mail"):
            result.mail_reply = conn.command(mail_cmd)
        if _closing(result, result.mail_reply):
            return result
        if opts.quit_after == "mail":
            result.stopped_after = "mail"
            return result
        if not result.mail_reply.positive:
            return result
        with conn.transcript.in_stage("rcpt"):
            for rcpt, cmd in rcpt_cmds:
                result.recipients.append(RecipientResult(rcpt, conn.command(cmd)))
                if _closing(result, result.recipients[-1].reply):
                    return result
    if result.mail_reply is None or not result.mail_reply.positive:
        return result
    if opts.quit_after == "rcpt":
        result.stopped_after = "rcpt"
        return result
    if not result.accepted or content is None:
        return result
    with conn.transcript.in_stage("data"):
        if opts.bdat:
            result.data_reply = _send_bdat(conn, content, opts.chunk_size)
        else:
            result.data_reply = _send_data(conn, content)
    if result.data_reply is not None:
        _closing(result, result.data_reply)
    if result.data_reply is not None and result.data_reply.code == 250:
        result.queue_id = queue_id(result.data_reply)
    return result


def _closing(result: TransactionResult, reply: Reply) -> bool:
    """421: the server is closing the channel (RFC 5321 3.8); nothing more may be sent."""
    if reply.code == 421:
        result.closed_by_server = True
        return True
    return False


def _record_content(conn: SmtpConnection, content: bytes) -> None:
    """Headers (up to SHOWN_CONTENT_LINES lines) as sent lines, the rest as a summary."""
    head = content.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    for line in head[:SHOWN_CONTENT_LINES]:
        conn.transcript.add("sent", line.decode("utf-8", "replace"))
    more = content.count(b"\r\n") - min(len(head), SHOWN_CONTENT_LINES)
    conn.transcript.info(f"[message: {len(content)} bytes, {more} more lines not shown]")


def dot_stuff(content: bytes) -> bytes:
    """RFC 5321 4.5.2: double a leading dot on every line; end with CRLF . CRLF."""
    if not content.endswith(b"\r\n"):
        content += b"\r\n"
    stuffed = re.sub(rb"(?m)^\.", b"..", content)
    return stuffed + b".\r\n"


def _send_data(conn: SmtpConnection, content: bytes) -> Reply:
    reply = conn.command("DATA")
    if reply.code != 354:
        return reply
    _record_content(conn, content)
    conn.send_raw(dot_stuff(content))
    conn.transcript.add("sent", ".")
    return conn.read_reply()


def _send_bdat(conn: SmtpConnection, content: bytes, chunk_size: int) -> Reply:
    """RFC 3030 2: ``BDAT <size> [LAST]`` followed by exactly <size> octets, no dot-stuffing.

    Each chunk gets a reply; a failure ends the transaction with that reply (RFC 3030 4.1: the
    server discards the whole message).
    """
    size = chunk_size if chunk_size > 0 else max(len(content), 1)
    chunks = [content[i : i + size] for i in range(0, len(content), size)] or [b""]
    _record_content(conn, content)
    reply = Reply(250)
    for n, chunk in enumerate(chunks):
        last = n == len(chunks) - 1
        line = f"BDAT {len(chunk)}{' LAST' if last else ''}"
        conn.transcript.add("sent", line)
        conn.send_raw(line.encode() + b"\r\n" + chunk)
        reply = conn.read_reply()
        if reply.code != 250:
            return reply
    return reply
