"""Parse server targets: ``host``, ``host:port``, address literals (``[v4]``, ``[v6]``,
``[IPv6:v6]``, with or without ``:port``: see ``smtpcli.hostport``) and ``smtp://``,
``smtps://``, ``submission://`` URLs, with the default port and TLS mode that go with them.

Default TLS mode by port (documented in docs/send.md):

* 465 -> ``implicit`` (RFC 8314 3.3: implicit TLS for submission),
* 587 -> ``starttls`` required (RFC 8314 3.3 / RFC 6409: submission must be protected),
* 25 and anything else -> ``opportunistic`` (STARTTLS when advertised, plain otherwise, as
  MTAs do on port 25: RFC 3207 4).
"""

from __future__ import annotations

import enum
import ipaddress
import socket

from smtpcli.errors import UsageError
from smtpcli.hostport import split_host_port
from smtpcli.records import FrozenRecord

DEFAULT_PORT = 25


class TlsMode(enum.Enum):
    """How a connection gets (or does not get) TLS."""

    STARTTLS = "starttls"          # STARTTLS required: fail when the server does not offer it
    IMPLICIT = "implicit"          # TLS from the first byte (port 465)
    NONE = "none"                  # never TLS, even when offered
    OPPORTUNISTIC = "opportunistic"  # STARTTLS when advertised, else carry on in plain text

    @classmethod
    def parse(cls, text: str) -> TlsMode:
        try:
            return cls(text.strip().lower())
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise UsageError(f"unknown TLS mode {text!r} (choose one of {choices})") from None


_SCHEMES: dict[str, tuple[int, TlsMode]] = {
    "smtp": (25, TlsMode.OPPORTUNISTIC),
    "smtps": (465, TlsMode.IMPLICIT),
    "submission": (587, TlsMode.STARTTLS),
    "submissions": (465, TlsMode.IMPLICIT),
}


def default_tls_mode(port: int) -> TlsMode:
    """The TLS mode a port implies when none is given (see module docstring)."""
    if port == 465:
        return TlsMode.IMPLICIT
    if port == 587:
        return TlsMode.STARTTLS
    return TlsMode.OPPORTUNISTIC


class Target(FrozenRecord):
    """Where to connect: a host name or IP literal, a port, a TLS mode.

    ``addresses`` optionally pins the IP addresses to connect to (for example the A/AAAA answers of
    an MX host, resolved through the configured resolver); ``host`` stays the name used for SNI and
    certificate checks.
    """

    __slots__ = ("host", "port", "tls", "addresses", "given")
    host: str
    port: int
    tls: TlsMode
    addresses: tuple[str, ...]
    given: str

    def __init__(self, host: str, port: int = DEFAULT_PORT,
                 tls: TlsMode = TlsMode.OPPORTUNISTIC, addresses: tuple[str, ...] = (),
                 given: str = "") -> None:
        self._set(host=host, port=port, tls=tls, addresses=addresses, given=given)

    @property
    def is_ip(self) -> bool:
        return is_ip(self.host)

    @property
    def display(self) -> str:
        """``host:port`` with IPv6 literals bracketed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def with_addresses(self, addresses: list[str] | tuple[str, ...]) -> Target:
        return self.replace(addresses=tuple(addresses))

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"host": self.host, "port": self.port, "tls": self.tls.value}
        if self.addresses:
            out["addresses"] = list(self.addresses)
        return out


LOOPBACK = ("127.0.0.1", "::1")


def loopback_addresses(host: str, family: int = 0) -> tuple[str, ...] | None:
    """The loopback addresses for ``localhost`` and names under it, None for other names.

    RFC 6761 6.3: localhost names always mean the loopback address and are never sent to DNS
    (a --nameserver would answer NXDOMAIN or something worse). ``family`` 4 or 6 keeps one.
    """
    name = host.rstrip(".").lower()
    if name != "localhost" and not name.endswith(".localhost"):
        return None
    return tuple(a for a in LOOPBACK if family in (0, 6 if ":" in a else 4))


def is_ip(text: str) -> bool:
    """True for an IPv4 or IPv6 address literal (no brackets)."""
    if ":" not in text:
        # Dotted-quad IPv4: inet_pton takes exactly ipaddress's grammar (four decimal
        # octets, no leading zeros), and a one-message send need not load ipaddress for it.
        try:
            socket.inet_pton(socket.AF_INET, text)
        except (OSError, ValueError):
            return False
        return True
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _parse_port(text: str, given: str) -> int:
    # isascii: str.isdigit() is also true for '²', which int() rejects.
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise UsageError(f"invalid port {text!r} in {given!r}: give a number from 1 to 65535")
    return int(text)


def _check_host(host: str, given: str) -> str:
    if not host:
        raise UsageError(f"no host in target {given!r}")
    if is_ip(host):
        return host
    name = host.rstrip(".")
    labels = name.split(".")
    if any(not label or len(label) > 63 for label in labels) or len(name) > 253:
        raise UsageError(f"invalid host name {host!r} in target {given!r}")
    for label in labels:
        if label.startswith("-") or label.endswith("-") or not all(
            c.isalnum() or c in "-_" for c in label
        ):
            raise UsageError(f"invalid host name {host!r} in target {given!r}")
    return name


def parse_target(text: str, *, tls: TlsMode | str | None = None, port: int | None = None) -> Target:
    """Parse a target; ``tls``/``port`` given separately win over what the text implies.

    Raises UsageError (exit 2) for a malformed target, a port that is not a number, an unknown
    scheme or TLS mode.
    """
    given = text
    raw = text.strip()
    mode = TlsMode.parse(tls) if isinstance(tls, str) else tls
    scheme_port: int | None = None
    scheme_mode: TlsMode | None = None
    if "://" in raw:
        scheme, _, raw = raw.partition("://")
        entry = _SCHEMES.get(scheme.lower())
        if entry is None:
            known = ", ".join(f"{s}://" for s in _SCHEMES)
            raise UsageError(f"unknown scheme {scheme!r} in {given!r} (use {known})")
        scheme_port, scheme_mode = entry
        raw = raw.split("/", 1)[0]
        if "@" in raw:
            raise UsageError(
                f"credentials in the target URL {given!r} are not supported: use --user"
            )
    text_port: int | None = None
    if raw.count(":") > 1 and not raw.startswith("["):
        host = raw  # a bare IPv6 literal without port
        if not is_ip(host):
            raise UsageError(f"invalid target {given!r}: bracket IPv6 addresses as [addr]:port")
    else:
        host, port_text = split_host_port(raw, "target")
        if port_text is not None:
            text_port = _parse_port(port_text, given)
    host = _check_host(host, given)
    final_port = port or text_port or scheme_port or DEFAULT_PORT
    if mode is None:
        # A scheme's mode holds for its own default port; an explicit port picks its own mode.
        if scheme_mode is not None and (text_port is None and port is None):
            mode = scheme_mode
        elif scheme_mode is not None and scheme_mode is TlsMode.IMPLICIT:
            mode = TlsMode.IMPLICIT
        else:
            mode = default_tls_mode(final_port)
    return Target(host=host, port=final_port, tls=mode, given=given)
