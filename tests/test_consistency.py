"""Small consistency defects users met (issue 14): transfer encoding as documented, stage tags
of pipelined RCPT lines, transcripts naming options the command has, RFC citations that fit."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.servers.scripted_peer import Send
from tests.servers.serve_bench_helpers import capture_server

__all__ = ["capture_server"]


def test_short_non_ascii_body_is_quoted_printable(cli, smtp_server) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("plain")
    code, _, err = cli("send", "--server", f"127.0.0.1:{server.port}", "--tls", "none",
                       "-f", "a@example.test", "-t", "b@example.test", "--body", "Grüße")
    assert code == 0, err
    content = server.messages[0].content
    assert b"Content-Transfer-Encoding: quoted-printable" in content
    assert b"Gr=C3=BC=C3=9Fe" in content


def test_mostly_non_ascii_body_is_base64(cli, smtp_server) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("plain")
    code, _, _ = cli("send", "--server", f"127.0.0.1:{server.port}", "--tls", "none",
                     "-f", "a@example.test", "-t", "b@example.test", "--body", "你好世界，这是测试")
    assert code == 0
    assert b"Content-Transfer-Encoding: base64" in server.messages[0].content


def test_pipelined_rcpt_lines_are_tagged_rcpt(cli, capture_server) -> None:  # type: ignore[no-untyped-def]
    server = capture_server()  # serve: advertises PIPELINING
    code, out, _ = cli("send", "--server", f"127.0.0.1:{server.port}", "--tls", "none",
                       "-f", "a@example.test", "-t", "b@example.test", "-t", "c@example.test",
                       "--json")
    doc = json.loads(out)
    assert code == 0 and doc["facts"]["pipelined"]
    sent = [(e["stage"], e["line"].split(":")[0]) for e in doc["facts"]["transcript"]
            if e["dir"] == "sent" and e["line"].startswith(("MAIL", "RCPT"))]
    assert sent == [("mail", "MAIL FROM"), ("rcpt", "RCPT TO"), ("rcpt", "RCPT TO")]


def test_session_transcript_does_not_name_an_option_it_lacks(smtp_server) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("starttls")  # its CA is not given: verification is reported as off
    done = subprocess.run([sys.executable, "-m", "smtpcli", "session", f"127.0.0.1:{server.port}",
                           "--timeout", "5"], input="EHLO me\n.starttls\nQUIT\n",
                          capture_output=True, text=True, timeout=30)
    assert "TLSv1" in done.stdout
    assert "--insecure" not in done.stdout and "verification off" in done.stdout


def test_failed_implicit_tls_cites_rfc_8314(cli, scripted_peer, dns_server) -> None:  # type: ignore[no-untyped-def]
    peer = scripted_peer([Send(b"220 plain text where TLS was due\r\n")])
    dns = dns_server(zone_files=["probe-multi.zone", "probe-ptr.zone"])
    _, out, _ = cli("probe", f"smtps://127.0.0.1:{peer.port}", "--json", "--timeout", "3",
                    "--no-tls-versions", "--nameserver", dns.nameserver)
    failed = [f for f in json.loads(out)["findings"] if f["id"] == "tls.handshake-failed"]
    assert failed and failed[0]["reference"] == "RFC 8314 3.3"
