"""Resolver factory every command uses: ``--nameserver HOST[:PORT]``, ``--timeout``, retries.

Only dnspython is used; the machine's resolver is asked only when no nameserver is configured.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from smtpcli.errors import UsageError

if TYPE_CHECKING:
    import dns.asyncresolver
    import dns.resolver

DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRIES = 1


@dataclass(frozen=True)
class Nameserver:
    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_nameserver(text: str) -> Nameserver:
    """Parse ``HOST``, ``HOST:PORT``, ``[V6]:PORT``, ``[IPv6:V6]:PORT`` or a bare IPv6 address;
    IPs only."""
    from smtpcli.hostport import split_host_port

    host, given_port = split_host_port(text, "nameserver")
    port = "53" if given_port is None else given_port
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(
            f"invalid nameserver {text!r}: give an IP address, optionally with :PORT"
        ) from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"invalid nameserver port in {text!r}")
    return Nameserver(host, int(port))


@dataclass(frozen=True)
class ResolverConfig:
    """What the user said about DNS: which servers, how long to wait, how often to retry."""

    nameservers: tuple[Nameserver, ...] = field(default_factory=tuple)
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES

    @classmethod
    def from_options(
        cls, nameservers: tuple[str, ...] | list[str] | None, timeout: float | None,
        retries: int | None = None,
    ) -> ResolverConfig:
        return cls(
            nameservers=tuple(parse_nameserver(n) for n in (nameservers or ())),
            timeout=DEFAULT_TIMEOUT if timeout is None else float(timeout),
            retries=DEFAULT_RETRIES if retries is None else int(retries),
        )


def plain_dns_only() -> None:
    """Tell dnspython not to load its DNS-over-HTTPS stack.

    dnspython imports httpx/httpcore at ``dns.query`` import time when they are installed
    (checkdmarc brings them), about 100 ms of start-up for every command that resolves anything;
    smtpcli only speaks DNS over UDP/TCP port 53. Must run before ``dns.query`` is imported.
    """
    import dns._features

    dns._features.force("doh", False)


def _configure(res: dns.resolver.BaseResolver, config: ResolverConfig) -> None:
    import dns.flags
    import dns.nameserver

    if config.nameservers:
        res.nameservers = [
            dns.nameserver.Do53Nameserver(ns.host, ns.port) for ns in config.nameservers
        ]
    # One try per server per retry; the lifetime bounds the whole lookup (no hang past --timeout
    # times the number of tries).
    res.timeout = config.timeout
    res.lifetime = config.timeout * (config.retries + 1)
    # RFC 6840 5.7: setting AD in the query asks a validating resolver to report validation.
    res.flags = dns.flags.RD | dns.flags.AD
    res.use_edns(0, dns.flags.DO, 1232)
    res.cache = None


def make_async_resolver(config: ResolverConfig) -> dns.asyncresolver.Resolver:
    """An asyncio resolver honouring the configuration."""
    plain_dns_only()
    import dns.asyncresolver

    res = dns.asyncresolver.Resolver(configure=not config.nameservers)
    _configure(res, config)
    return res


def make_resolver(config: ResolverConfig) -> dns.resolver.Resolver:
    """A blocking resolver honouring the configuration (for pyspf, checkdmarc, dkimpy)."""
    plain_dns_only()
    import dns.resolver

    res = dns.resolver.Resolver(configure=not config.nameservers)
    _configure(res, config)
    return res
