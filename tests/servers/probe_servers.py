"""Helpers for the probe tests: aiosmtpd servers on one port across several loopback addresses
(so a domain's MX addresses can all point at `--port`), and a small HTTPS server for MTA-STS."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.servers.certs import CertFiles
from tests.servers.smtp_fixture import RecordingHandler, RunningSmtpServer, _LoopbackController


def free_port(hosts: tuple[str, ...]) -> int:
    """A TCP port free on every one of ``hosts``."""
    for _ in range(100):
        probe = socket.socket(socket.AF_INET6 if ":" in hosts[0] else socket.AF_INET)
        probe.bind((hosts[0], 0))
        port = probe.getsockname()[1]
        probe.close()
        ok = True
        for host in hosts:
            s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            try:
                s.bind((host, port))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return port
    raise RuntimeError("no common free port")


def start_on(host: str, port: int, *, cert: CertFiles | None = None,
             users: dict[str, str] | None = None, hostname: str = "mx.probe.test",
             **kw: Any) -> RunningSmtpServer:
    """An aiosmtpd server on ``host:port``; STARTTLS when ``cert`` is given."""
    handler = RecordingHandler(users=dict(users or {}))
    kwargs: dict[str, Any] = {
        "server_hostname": hostname, "authenticator": handler.authenticator,
        "auth_require_tls": cert is not None, "ready_timeout": 5.0,
        "auth_exclude_mechanism": [] if users else ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"],
        **kw,
    }
    if users:
        kwargs["auth_exclude_mechanism"].append("XOAUTH2")
    if cert is not None:
        kwargs["tls_context"] = cert.server_context()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    controller = _LoopbackController(handler, sock, **kwargs)
    controller.start()
    return RunningSmtpServer("starttls" if cert else "plain", host, port, handler, cert, controller)


@dataclass
class HttpsServer:
    port: int
    requests: list[str]
    server: http.server.ThreadingHTTPServer

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_https(cert: CertFiles, routes: dict[str, str], host: str = "127.0.0.1") -> HttpsServer:
    """An HTTPS server answering GET ``path`` with ``routes[path]`` (text/plain), else 404."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            seen.append(f"{self.headers.get('Host')}{self.path}")
            body = routes.get(self.path)
            if body is None:
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, 0), Handler)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert.cert_path, cert.key_path)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return HttpsServer(server.server_address[1], seen, server)


def stop_all(servers: Iterator[Any] | list[Any]) -> None:
    for s in servers:
        s.stop()
