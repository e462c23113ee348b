"""The network guard itself: loopback works, anything else fails at once, here and in children."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest


def test_loopback_allowed_elsewhere_refused() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
    with pytest.raises(OSError, match="test guard"), socket.socket() as sock:
        sock.connect(("192.0.2.1", 25))
    with pytest.raises(OSError, match="test guard"), \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"x", ("10.255.255.53", 53))
    with pytest.raises(socket.gaierror, match="test guard"):
        socket.getaddrinfo("example.com", 25)
    assert socket.getaddrinfo("localhost", 25)


def test_guard_reaches_python_subprocesses() -> None:
    code = "import socket\ntry:\n    socket.getaddrinfo('example.com', 25)\nexcept OSError as e:\n    print(e)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert "test guard" in out.stdout


def test_default_resolver_cannot_reach_the_machines_nameserver() -> None:
    from smtpcli.dnsq.resolver import ResolverConfig, make_resolver

    res = make_resolver(ResolverConfig(timeout=1.0, retries=0))
    import dns.exception

    with pytest.raises((dns.exception.DNSException, OSError)):
        res.resolve("example.com", "A")
