"""SMTP smuggling (CVE-2023-51764 Postfix, CVE-2023-51765 Sendmail, CVE-2023-51766 Exim).

RFC 5321 4.1.1.4 ends DATA with ``<CRLF>.<CRLF>`` only. A receiving server that also accepts a
non-standard sequence (``\\n.\\n``, ``\\n.\\r\\n``, ``\\r.\\r``...) lets a sender hide a second
SMTP transaction inside a message that an outbound server passes on unchanged: the hidden
message then arrives with the outbound server's authority (SPF, DKIM), spoofing any sender.

For each sequence the probe opens a transaction, sends the body, the sequence and a smuggled
``MAIL FROM`` line, byte-exact, and times the replies:

* a 2xx arriving right away: the server took the sequence as the end of DATA (vulnerable; the
  reply to the smuggled MAIL FROM is recorded, then RSET: nothing more is sent);
* a 4xx/5xx or a closed connection right away: the server noticed and refused (not vulnerable);
* nothing within ``reply_wait``: still in DATA, the sequence is content; the real
  ``\\r\\n.\\r\\n`` ends the message (one test message per such sequence is delivered).

With ``options.confirm`` (a callable counting the messages the recipient stored, for example
an ``smtpcli serve`` instance) each sequence is also sent with a whole smuggled transaction,
and the number of messages stored (2 smuggled, 1 not) confirms the verdict end to end.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

from smtpcli.errors import ProtocolError, SmtpcliError, SmtpReplyError, UsageError
from smtpcli.results import Finding, Status
from smtpcli.security.common import SecurityOptions, error_finding, open_session, quit_quietly
from smtpcli.security.wire import Wire
from smtpcli.smtp.target import Target

ID = "security.smuggling"
REFERENCE = "RFC 5321 4.1.1.4, 2.3.8; CVE-2023-51764, CVE-2023-51765, CVE-2023-51766"
TERMINATOR = b"\r\n.\r\n"


@dataclass(frozen=True)
class Sequence:
    name: str
    data: bytes

    @property
    def shown(self) -> str:
        return self.data.decode("latin-1").replace("\r", "\\r").replace("\n", "\\n").replace(
            "\x00", "\\0")


#: Non-standard end-of-data sequences (the SEC Consult research, plus NUL variants).
SEQUENCES: tuple[Sequence, ...] = (
    Sequence("lf.lf", b"\n.\n"),
    Sequence("lf.crlf", b"\n.\r\n"),
    Sequence("crlf.lf", b"\r\n.\n"),
    Sequence("cr.cr", b"\r.\r"),
    Sequence("cr.lf", b"\r.\n"),
    Sequence("cr.crlf", b"\r.\r\n"),
    Sequence("crlf.cr", b"\r\n.\r"),
    Sequence("lf.cr", b"\n.\r"),
    Sequence("crlf.nul.crlf", b"\r\n\x00.\r\n"),
    Sequence("crlf.dot-nul.crlf", b"\r\n.\x00\r\n"),
)


def select(names: tuple[str, ...] | None) -> tuple[Sequence, ...]:
    """The sequences named (all for None); unknown names are a usage error."""
    if names is None:
        return SEQUENCES
    known = {s.name: s for s in SEQUENCES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown smuggling sequence {', '.join(unknown)} "
                         f"(choose from {', '.join(known)})")
    return tuple(known[n] for n in names)


def _message(seq: Sequence, sender: str, rcpt: str, tag: str) -> bytes:
    head = (
        f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: smtpcli smuggling probe {seq.name} {tag}\r\n"
        f"Date: {formatdate(localtime=False)}\r\nMessage-ID: <{tag}@smtpcli.invalid>\r\n"
        f"X-Smtpcli-Probe: smuggling {seq.name}\r\n\r\n"
    ).encode()
    return head + f"This message tests how the server ends DATA; {seq.shown} follows.".encode()


def _smuggled(sender: str, rcpt: str, seq: Sequence, tag: str) -> bytes:
    return (
        f"MAIL FROM:<{sender}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n"
        f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: smtpcli SMUGGLED message {seq.name} {tag}\r\n"
        f"Message-ID: <{tag}.smuggled@smtpcli.invalid>\r\n\r\nsmuggled"
    ).encode() + TERMINATOR


class TransactionRefused(SmtpReplyError):
    """The server refused MAIL, RCPT or DATA: no sequence can be tested in this session."""


def _open_data(target: Target, options: SecurityOptions, rcpt: str) -> Wire:
    # With credentials: STARTTLS when offered, then AUTH (a submission server needs both).
    wire = open_session(target, options, auth=True)
    try:
        for line in (f"MAIL FROM:<{options.mail_from}>", f"RCPT TO:<{rcpt}>", "DATA"):
            reply = wire.command(line)
            want = 3 if line == "DATA" else 2
            if reply.code // 100 != want:
                raise TransactionRefused(f"{wire.where} answered {line.split(':')[0]} with "
                                         f"{reply.one_line()}", code=reply.code, reply=reply.text)
    except BaseException:
        quit_quietly(wire)
        raise
    return wire


def _rset_quietly(wire: Wire) -> None:
    """RSET after the probe; a server that already hung up is fine."""
    if wire.sock is None:
        return
    try:
        wire.command("RSET")
    except SmtpcliError:
        wire.close()


def probe_sequence(target: Target, options: SecurityOptions, rcpt: str, seq: Sequence) -> dict[str, Any]:
    """Send one sequence and classify the server's reaction (see module docstring)."""
    tag = secrets.token_hex(4)
    out: dict[str, Any] = {"name": seq.name, "sequence": seq.shown}
    wire = _open_data(target, options, rcpt)
    try:
        wire.mark()
        wire.send(_message(seq, options.mail_from, rcpt, tag) + seq.data
                  + f"MAIL FROM:<{options.mail_from}>\r\n".encode())
        replies = []
        try:
            first = wire.poll(options.quiet)
        except ProtocolError:
            out.update(verdict="rejected", detail="connection closed after the sequence")
            return out
        if first is not None:
            replies.append(first.to_dict())
            if first.code // 100 == 2:
                out["verdict"] = "end-of-data"
                second = wire.poll(options.quiet)
                if second is not None:
                    out["smuggled_mail_reply"] = second.reply.one_line()
                    replies.append(second.to_dict())
            else:
                out["verdict"] = "rejected"
            out["replies"] = replies
            _rset_quietly(wire)
            return out
        wire.mark()
        wire.send(TERMINATOR)
        end = wire.reply()
        replies.append(end.to_dict())
        late = wire.poll(min(options.quiet, 0.5))
        if late is not None:
            # The sequence did end DATA, only slower than reply_wait: the terminator's
            # blank line and dot were then read as commands.
            replies.append(late.to_dict())
            out["verdict"] = "end-of-data"
            out["late"] = True
        else:
            out["verdict"] = "data" if end.code // 100 == 2 else "rejected"
        out["replies"] = replies
        return out
    finally:
        quit_quietly(wire)


def confirm_sequence(target: Target, options: SecurityOptions, rcpt: str, seq: Sequence) -> int:
    """Send the sequence with a whole smuggled transaction; how many messages carrying this
    attempt's tag got stored (2: smuggled, 1: the sequence stayed content)."""
    assert options.confirm is not None
    tag = secrets.token_hex(6)
    wire = _open_data(target, options, rcpt)
    try:
        wire.send(_message(seq, options.mail_from, rcpt, tag) + seq.data
                  + _smuggled(options.mail_from, rcpt, seq, tag))
        while True:
            try:
                if wire.poll(options.quiet) is None:
                    break
            except ProtocolError:
                break
        _rset_quietly(wire)
    finally:
        quit_quietly(wire)
    # Delivery may lag the 250 (a queue in between): wait for the second message a little
    # after the first one shows up, within a bounded time.
    deadline = time.monotonic() + max(3.0, 4 * options.quiet)
    first_seen: float | None = None
    while True:
        count = options.confirm(tag)
        now = time.monotonic()
        if count >= 2 or now > deadline:
            return count
        if count == 1:
            first_seen = first_seen or now
            if now - first_seen > max(0.5, options.quiet):
                return count
        time.sleep(0.05)


def maildir_counter(path: str) -> Callable[[str], int]:
    """A ``SecurityOptions.confirm`` for a recipient that stores into a Maildir (``smtpcli serve
    --maildir``, Postfix): counts messages in new/ and cur/ that contain the tag."""

    def count(tag: str) -> int:
        needle = tag.encode()
        total = 0
        for sub in ("new", "cur"):
            folder = Path(path) / sub
            if not folder.is_dir():
                continue
            for item in folder.iterdir():
                try:
                    if needle in item.read_bytes():
                        total += 1
                except OSError:
                    continue  # renamed from new/ to cur/ meanwhile
        return total

    return count


def check(target: Target, options: SecurityOptions) -> list[Finding]:
    """One ``security.smuggling`` finding with a verdict per sequence in ``data``."""
    sequences = select(options.smuggling_sequences)
    results: list[dict[str, Any]] = []
    rcpt = options.smuggling_rcpt
    try:
        if rcpt is None:
            wire = open_session(target, options)
            domain, _ = options.mail_domain(wire.announced_name())
            quit_quietly(wire)
            rcpt = f"postmaster@{domain or target.host}"
        for seq in sequences:
            try:
                outcome = probe_sequence(target, options, rcpt, seq)
                if options.confirm is not None:
                    stored = confirm_sequence(target, options, rcpt, seq)
                    outcome["stored"] = stored
                    outcome["confirmed"] = stored >= 2
            except SmtpReplyError:
                raise  # the transaction (or AUTH) is refused: no sequence can be tested
            except SmtpcliError as exc:
                outcome = {"name": seq.name, "sequence": seq.shown, "verdict": "error",
                           "detail": exc.one_line()}
            results.append(outcome)
    except TransactionRefused as exc:
        # A server that merely refuses us is not an incomplete probe: say what it needs.
        at_mail = " answered MAIL " in exc.message
        hint = ("give credentials (--user, --password-file)" if at_mail and not options.username
                else "give a recipient it accepts (--smuggling-rcpt, --domain)" if not at_mail
                else "the server refuses this sender")
        return [Finding(id=ID, status=Status.INFO, reference=REFERENCE,
                        data={"recipient": rcpt, "refused": exc.one_line(),
                              "authenticated": bool(options.username)},
                        summary=f"SMTP smuggling not tested: {exc.one_line()}; {hint}")]
    except SmtpcliError as exc:
        return [error_finding(ID, "the SMTP smuggling probe", exc)]
    data = {"recipient": rcpt, "authenticated": bool(options.username), "reply_wait_s": options.quiet, "sequences": results}
    vulnerable = [r for r in results if r["verdict"] == "end-of-data" or r.get("confirmed")]
    errors = [r for r in results if r["verdict"] == "error"]
    if vulnerable:
        shown = ", ".join(r["sequence"] for r in vulnerable)
        return [Finding(
            id=ID, status=Status.FAIL, reference=REFERENCE, data=data,
            summary=f"SMTP smuggling: the server ends DATA at non-standard sequences: {shown}",
            detail="A message relayed through an outbound server that passes these bytes on "
                   "can carry a hidden second message, which arrives with that server's "
                   "SPF/DKIM authority.",
            fix="Upgrade and refuse bare CR/LF (Postfix: smtpd_forbid_bare_newline = yes; "
                "Exim 4.97.1+; Sendmail 8.18 with srv_features 'o').")]
    if errors:
        return [Finding(id=ID, status=Status.ERROR, reference=REFERENCE, data=data,
                        summary=f"SMTP smuggling probe incomplete: {errors[0]['detail']}")]
    rejected = sum(1 for r in results if r["verdict"] == "rejected")
    return [Finding(
        id=ID, status=Status.OK, reference=REFERENCE, data=data,
        summary=f"no SMTP smuggling: {len(results)} non-standard sequences did not end DATA "
                f"({rejected} refused, {len(results) - rejected} kept as content)")]
