"""What the session knows about the conversation so far; completion and specials read it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SessionState:
    """Connection facts the completer and the specials need (no sockets here)."""

    connected: bool = False
    tls: bool = False
    host: str | None = None
    # EHLO keywords (upper case) -> parameters, from the latest EHLO reply.
    capabilities: dict[str, str] = field(default_factory=dict)
    in_data: bool = False          # after a raw DATA got 354: lines are message text
    in_auth: bool = False          # after a 334 challenge: lines are AUTH answers (secret)
    last_code: int | None = None

    @property
    def auth_mechanisms(self) -> list[str]:
        return self.capabilities.get("AUTH", "").upper().split()

    def set_capabilities(self, lines: list[str]) -> None:
        """From EHLO reply texts (the first is the greeting line, RFC 5321 4.1.1.1)."""
        caps: dict[str, str] = {}
        for line in lines[1:]:
            keyword, _, params = line.strip().partition(" ")
            if keyword:
                caps[keyword.upper()] = params.strip()
        self.capabilities = caps

    def disconnected(self) -> None:
        self.connected = False
        self.tls = False
        self.capabilities = {}
        self.in_data = False
        self.in_auth = False
