"""Exceptions and the exit-code mapping; the CLI edge is the one place that translates them.

Exit codes (DESIGN.md, docs/output.md): 0 ok, 1 a check failed (or warned with --strict), 2 usage error,
3 could not complete, 4 transient SMTP rejection, 5 permanent SMTP rejection, 130 interrupted.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    CHECK_FAILED = 1
    USAGE = 2
    INCOMPLETE = 3
    TRANSIENT = 4
    PERMANENT = 5
    INTERRUPTED = 130


class SmtpcliError(Exception):
    """Base of every error smtpcli reports as one line; its message says what failed and where."""

    exit_code: ExitCode = ExitCode.INCOMPLETE
    kind = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = " ".join(self.message.split())
        return f"{text} ({self.hint})" if self.hint else text


class UsageError(SmtpcliError):
    """The command line or an input file is not usable."""

    exit_code = ExitCode.USAGE
    kind = "usage"


class IncompleteError(SmtpcliError):
    """The job could not be completed (network, DNS, TLS, timeout)."""

    exit_code = ExitCode.INCOMPLETE
    kind = "incomplete"


class ConnectError(IncompleteError):
    """Could not connect to a server."""

    kind = "connect"


class DnsError(IncompleteError):
    """A DNS lookup failed (timeout, SERVFAIL, refused): never the same as 'absent'."""

    kind = "dns"


class TlsError(IncompleteError):
    """The TLS handshake or certificate verification failed."""

    kind = "tls"


class NetworkTimeout(IncompleteError):
    """A network step did not finish within --timeout."""

    kind = "timeout"


class ProtocolError(IncompleteError):
    """The peer broke the SMTP protocol (garbage, oversized lines, closed mid-reply)."""

    kind = "protocol"


class SmtpReplyError(SmtpcliError):
    """The server rejected the transaction; exit 4 for 4xx, 5 for 5xx."""

    kind = "smtp-reply"

    def __init__(self, message: str, *, code: int, reply: str = "", hint: str | None = None):
        super().__init__(message, hint=hint)
        self.code = code
        self.reply = reply
        self.exit_code = ExitCode.TRANSIENT if 400 <= code < 500 else ExitCode.PERMANENT


def exit_code_for_reply(code: int) -> ExitCode:
    """Exit code for an SMTP reply code: 4 for 4xx, 5 for 5xx, else 0."""
    if 400 <= code < 500:
        return ExitCode.TRANSIENT
    if 500 <= code < 600:
        return ExitCode.PERMANENT
    return ExitCode.OK
