"""The SMTP dialogue kept per session for ``serve --http`` (``/api/v1/message/{ID}/transcript``).

Each stored message gets the session's opening (greeting, EHLO, STARTTLS, AUTH: everything
before the first MAIL) and its own transaction (MAIL, RCPT, DATA and anything refused since the
previous message), not the whole session: a client sending 1,000 messages over one connection
costs 1,000 short lists, not 1,000 ever longer ones. AUTH arguments carry credentials
(RFC 4954 4) and are never kept.
"""

from __future__ import annotations

HEAD_MAX = 60  # lines of the opening kept
TXN_MAX = 200  # lines of one transaction kept (a client looping on refused RCPTs)


class SessionTranscript:
    def __init__(self) -> None:
        self.head: list[str] = []
        self.txn: list[str] = []
        self.in_head = True
        self.messages = 0
        self._waiting: list[str] | None = None  # a stored message waiting for its final reply

    def _add(self, line: str) -> None:
        target, cap = (self.head, HEAD_MAX) if self.in_head else (self.txn, TXN_MAX)
        if len(target) < cap:
            target.append(line)

    def client(self, verb: str, arg: str | None) -> None:
        if verb == "MAIL":
            self.in_head = False
        if verb == "AUTH" and arg and " " in arg.strip():
            arg = arg.split()[0] + " [redacted]"
        self._add(f"C: {verb} {arg}".rstrip() if arg else f"C: {verb}")

    def server(self, line: str) -> None:
        self._add("S: " + line)
        if self._waiting is not None:  # the reply to the final dot: the transaction is over
            self._waiting.append("S: " + line)
            self._waiting = None
            self.txn = []

    def message(self, size: int) -> list[str]:
        """The lines for a message just received (its final reply is added when sent)."""
        self._add(f"C: [message, {size} bytes, then .]")
        lines = list(self.head)
        if self.messages:
            lines.append(f"[{self.messages} earlier message(s) in this session]")
        lines += self.txn
        self.messages += 1
        self._waiting = lines
        return lines
