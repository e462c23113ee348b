"""Split ``HOST[:PORT]`` as users type it, address literals included, for every place that reads
a server, listen or nameserver address.

Accepted: ``host``, ``host:port``, a bare IPv6 address, and in brackets (with or without
``:port``) an IPv4 address, an IPv6 address, the SMTP address literal ``[IPv6:addr]`` (RFC 5321
4.1.3, as swaks takes it) and ``[host]`` (Postfix's relayhost form: that host, no MX lookup).
"""

from __future__ import annotations

import ipaddress

from smtpcli.errors import UsageError


def _ipv6(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 6
    except ValueError:
        return False


def split_host_port(text: str, what: str) -> tuple[str, str | None]:
    """``text`` -> (host, port text or None); brackets and the ``IPv6:`` tag removed.

    The caller checks the host and the port; ``what`` names the input in errors ("target").
    """
    raw = text.strip()
    if raw.startswith("["):
        end = raw.find("]")
        if end < 0:
            raise UsageError(f"invalid {what} {text!r}: missing ']'")
        host, rest = raw[1:end], raw[end + 1 :]
        if host[:5].lower() == "ipv6:":
            host = host[5:]
            if not _ipv6(host):
                raise UsageError(f"invalid IPv6 address {host!r} in {text!r}")
        if rest and not rest.startswith(":"):
            raise UsageError(f"invalid {what} {text!r}: unexpected {rest!r} after ']'")
        return host, rest[1:] if rest else None
    if raw.count(":") == 1:
        host, port = raw.split(":")
        return host, port
    return raw, None
