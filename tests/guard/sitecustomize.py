"""Test guard: no traffic leaves loopback, and the machine's resolver is never asked.

Loaded into the pytest process by tests/conftest.py, and into every Python subprocess the tests
start (``python -m smtpcli ...``) through PYTHONPATH, where Python imports ``sitecustomize`` at
start-up. A connect or datagram to a non-loopback address, or a name lookup that would go to
the system resolver, fails at once with a message naming the culprit, instead of sending a
packet to the machine's nameserver (DESIGN.md: every DNS question goes to the loopback fixture).
"""

from __future__ import annotations

import errno
import ipaddress
import socket

_HOSTS: set[str] = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
try:
    with open("/etc/hosts", encoding="utf-8", errors="replace") as _fh:
        for _line in _fh:
            _cols = _line.split("#", 1)[0].split()
            if len(_cols) >= 2:
                try:
                    if ipaddress.ip_address(_cols[0]).is_loopback:
                        _HOSTS.update(name.lower() for name in _cols[1:])
                except ValueError:
                    pass
except OSError:
    pass


def _is_loopback_literal(host: object) -> bool | None:
    """True/False for an IP literal, None for a name."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return None
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return None


def _check_destination(address: object) -> None:
    if isinstance(address, tuple) and address:
        loop = _is_loopback_literal(address[0])
        if loop is False or (loop is None and str(address[0]).lower() not in _HOSTS):
            raise OSError(errno.ENETUNREACH,
                          f"test guard: traffic to {address[0]} (only loopback is allowed)")


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_sendto = socket.socket.sendto
_getaddrinfo = socket.getaddrinfo
_gethostbyname = socket.gethostbyname
_gethostbyname_ex = socket.gethostbyname_ex
_gethostbyaddr = socket.gethostbyaddr


def _guarded_connect(self: socket.socket, address: object) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_destination(address)
    return _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_destination(address)
    return _connect_ex(self, address)


def _guarded_sendto(self: socket.socket, data: bytes, *args: object) -> int:
    address = args[-1]
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_destination(address)
    return _sendto(self, data, *args)  # type: ignore[arg-type]


def _name_allowed(host: object) -> bool:
    if host is None:
        return True
    if _is_loopback_literal(host) is not None:
        return True  # an IP literal needs no resolver (connect() still checks loopback)
    name = host.decode() if isinstance(host, bytes) else str(host)
    return name.rstrip(".").lower() in _HOSTS


def _guarded_getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
    if not _name_allowed(host):
        raise socket.gaierror(socket.EAI_NONAME,
                              f"test guard: the system resolver was asked for {host!r}")
    return _getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]


def _guarded_gethostbyname(host: str) -> str:
    if not _name_allowed(host):
        raise socket.gaierror(socket.EAI_NONAME, f"test guard: resolver asked for {host!r}")
    return _gethostbyname(host)


def _guarded_gethostbyname_ex(host: str) -> object:
    if not _name_allowed(host):
        raise socket.gaierror(socket.EAI_NONAME, f"test guard: resolver asked for {host!r}")
    return _gethostbyname_ex(host)


def _guarded_gethostbyaddr(host: str) -> object:
    loop = _is_loopback_literal(host)
    if loop is False or (loop is None and host.lower() not in _HOSTS):
        # A PTR question for a non-loopback address would go to the system resolver.
        raise socket.herror(1, f"test guard: reverse lookup of {host!r}")
    return _gethostbyaddr(host)


def install() -> None:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = _guarded_sendto  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]
    socket.gethostbyname = _guarded_gethostbyname
    socket.gethostbyname_ex = _guarded_gethostbyname_ex  # type: ignore[assignment]
    socket.gethostbyaddr = _guarded_gethostbyaddr  # type: ignore[assignment]


install()
