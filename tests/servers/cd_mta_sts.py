"""An HTTPS server on 127.0.0.1 serving MTA-STS policies by Host name, for check-domain tests.

The certificate (trustme, from the session CA) covers every ``mta-sts.<domain>`` in `POLICIES`;
tests point check-domain at it with ``--cafile`` and ``SMTPCLI_MTA_STS_PORT``.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.servers.certs import TlsCerts

ENFORCE = "version: STSv1\nmode: enforce\nmx: mx1.cd-clean.test\nmx: *.cd-clean.test\nmax_age: 86400\n"
POLICIES: dict[str, tuple[int, str, str]] = {
    # host -> (HTTP status, content type, body)
    "mta-sts.cd-clean.test": (200, "text/plain", ENFORCE),
    "mta-sts.sts-ok.cd-misc.test": (200, "text/plain; charset=utf-8", ENFORCE),
    "mta-sts.sts-testing.cd-misc.test": (
        200, "text/plain", "version: STSv1\nmode: testing\nmx: mx1.cd-clean.test\nmax_age: 600\n"),
    "mta-sts.sts-uncovered.cd-misc.test": (
        200, "text/plain", "version: STSv1\nmode: enforce\nmx: mx1.cd-clean.test\nmax_age: 600\n"),
    "mta-sts.sts-badpolicy.cd-misc.test": (200, "text/html", "<html>mode: enforce</html>\n"),
}


@dataclass
class MtaStsServer:
    port: int
    ca: str
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def mta_sts_server(tls_certs: TlsCerts, monkeypatch: pytest.MonkeyPatch) -> Iterator[MtaStsServer]:
    """Serve `POLICIES` over HTTPS; sets SMTPCLI_MTA_STS_PORT for the code under test."""
    files = tls_certs.issue("mta-sts", *POLICIES)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(files.cert_path, files.key_path)
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            host = (self.headers.get("Host") or "").split(":")[0].lower()
            seen.append(f"{host}{self.path}")
            status, ctype, body = POLICIES.get(host, (404, "text/plain", "no such policy\n"))
            if self.path != "/.well-known/mta-sts.txt":
                status, ctype, body = 404, "text/plain", "not found\n"
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    port = httpd.server_address[1]
    monkeypatch.setenv("SMTPCLI_MTA_STS_PORT", str(port))
    try:
        yield MtaStsServer(port, str(files.ca_path), seen)
    finally:
        httpd.shutdown()
        httpd.server_close()
