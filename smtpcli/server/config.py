"""ServeConfig: everything ``smtpcli serve`` (or an in-process user) can set, validated."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from smtpcli.errors import UsageError
from smtpcli.server.faults import DelayRule, DropRule, FaultPlan, ReplyRule

#: Extensions ``--hide`` can remove from the EHLO reply.
HIDEABLE = ("PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE", "STARTTLS", "AUTH", "HELP")


def parse_listen(text: str, option: str = "--listen") -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT``, ``[IPv6:v6]:PORT``, ``:PORT`` or ``PORT`` -> (host, port);
    port 0 = any free."""
    from smtpcli.hostport import split_host_port

    raw = text.strip()
    if raw.isdecimal():  # not isdigit: '²' is a digit that int() rejects
        host, port_text = "", raw
    else:
        host, given_port = split_host_port(raw, option)
        if given_port is None:
            raise UsageError(f"{option} {text!r}: give HOST:PORT, for example 127.0.0.1:2525")
        port_text = given_port
    host = host or "127.0.0.1"
    if not port_text.isdecimal() or not 0 <= int(port_text) < 65536:
        raise UsageError(f"{option} {text!r}: the port must be a number from 0 to 65535")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """True for loopback literals and ``localhost`` (no resolver is asked)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_users_file(path: str) -> dict[str, str]:
    """``user:password`` per line; blank lines and ``#`` comments ignored."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read --auth-users {path!r}: {exc.strerror}") from None
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user:
            raise UsageError(f"{path}:{number}: expected user:password")
        users[user] = password
    if not users:
        raise UsageError(f"--auth-users {path!r} has no users")
    return users


@dataclass
class ServeConfig:
    """Settings of one capture server; ``validate()`` raises UsageError on nonsense."""

    host: str = "127.0.0.1"
    port: int = 2525
    public: bool = False
    hostname: str = "smtpcli.test"
    # TLS: cert/key files, or a throwaway self-signed certificate.
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_self_signed: bool = False
    implicit_tls: bool = False
    require_starttls: bool = False
    # AUTH
    auth_users: dict[str, str] = field(default_factory=dict)
    auth_accept_any: bool = False
    auth_required: bool = False
    auth_plaintext: bool = False  # offer AUTH before STARTTLS
    max_size: int = 33554432
    smtputf8: bool = True
    hide: set[str] = field(default_factory=set)
    # storage
    maildir: str | None = None
    mbox: str | None = None
    jsonl: str | None = None
    memory: bool = False  # keep messages in memory even when another store is set
    fsync: bool = True
    received: bool = True  # add a Received: trace header (RFC 5321 4.4)
    # faults
    replies: list[ReplyRule] = field(default_factory=list)
    delays: list[DelayRule] = field(default_factory=list)
    drops: list[DropRule] = field(default_factory=list)
    greylist: float | None = None
    tarpit: bool = False
    tarpit_delay_ms: int = 1000
    seed: int | None = None
    # lifetime
    count: int | None = None
    exit_after: float | None = None
    expect: int | None = None
    grace: float = 5.0
    idle_timeout: float = 300.0
    # the HTTP API and web inbox (``--http``); off when http_port is None
    http_host: str = "127.0.0.1"
    http_port: int | None = None

    @property
    def http_enabled(self) -> bool:
        return self.http_port is not None

    @property
    def tls_enabled(self) -> bool:
        return bool(self.tls_cert or self.tls_self_signed)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.auth_users or self.auth_accept_any)

    def fault_plan(self) -> FaultPlan:
        return FaultPlan(self.replies, self.delays, self.drops, seed=self.seed)

    def validate(self) -> None:
        if not self.public and not is_loopback(self.host):
            raise UsageError(
                f"refusing to listen on {self.host}: not a loopback address",
                hint="add --public to accept mail from other machines",
            )
        if self.http_enabled and not self.public and not is_loopback(self.http_host):
            raise UsageError(
                f"refusing to serve HTTP on {self.http_host}: not a loopback address",
                hint="add --public to let other machines read the captured mail",
            )
        if self.tls_cert and self.tls_self_signed:
            raise UsageError("give --tls-cert or --tls-self-signed, not both")
        if self.tls_key and not self.tls_cert:
            raise UsageError("--tls-key needs --tls-cert")
        if self.implicit_tls and not self.tls_enabled:
            raise UsageError("--implicit-tls needs --tls-cert/--tls-key or --tls-self-signed")
        if self.require_starttls and not self.tls_enabled:
            raise UsageError("--require-starttls needs --tls-cert/--tls-key or --tls-self-signed")
        if self.require_starttls and self.implicit_tls:
            raise UsageError("--require-starttls makes no sense with --implicit-tls")
        if self.auth_users and self.auth_accept_any:
            raise UsageError("give --auth-users or --auth-accept-any, not both")
        if self.auth_required and not self.auth_enabled:
            raise UsageError("--auth-required needs --auth-users or --auth-accept-any")
        unknown = {h.upper() for h in self.hide} - set(HIDEABLE)
        if unknown:
            raise UsageError(
                f"cannot hide {', '.join(sorted(unknown))} (choose from {', '.join(HIDEABLE)})"
            )
        self.hide = {h.upper() for h in self.hide}
        if self.max_size < 0:
            raise UsageError("--max-size must be 0 (no limit) or more")
        for value, name in ((self.count, "--count"), (self.expect, "--expect")):
            if value is not None and value < 0:
                raise UsageError(f"{name} must be 0 or more")
