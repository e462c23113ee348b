"""One rule for every command (issue 14): each JSON document has ``exit_code``, 0 included,
equal to what the process exits with; so does every report line of a JSON Lines stream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.servers.inspect_msgs import message


@pytest.mark.parametrize("args", [
    ["explain", "250"],
    ["explain", "550", "5.1.1"],
    ["check-domain", "--record", "v=spf1 -all"],
    ["check-domain", "--record", "v=DMARC1; p=none"],
    ["dkim", "verify", "{msg}"],
    ["inspect", "--offline", "{msg}"],
    ["send", "--dry-run", "-f", "a@example.test", "-t", "b@example.test"],
])
def test_every_document_carries_the_process_exit_code(cli, tmp_path: Path, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    msg = tmp_path / "m.eml"
    msg.write_bytes(message())
    code, out, err = cli(*[a.replace("{msg}", str(msg)) for a in args], "--json")
    doc = json.loads(out)
    assert doc["exit_code"] == code, err


def test_send_ok_and_keygen_say_zero(cli, smtp_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("plain")
    code, out, _ = cli("send", "--server", f"127.0.0.1:{server.port}", "--tls", "none",
                       "-f", "a@example.test", "-t", "b@example.test", "--json")
    assert code == 0 and json.loads(out)["exit_code"] == 0
    code, out, _ = cli("dkim", "keygen", "--domain", "example.test", "--selector", "s",
                       "--bits", "1024", "--out", str(tmp_path / "k.pem"), "--json")
    assert code == 0 and json.loads(out)["exit_code"] == 0


def test_check_domain_lines_each_carry_their_own(cli, dns_server) -> None:  # type: ignore[no-untyped-def]
    dns = dns_server(zone_files=["cd-clean.test.zone", "cd-dmarc.test.zone", "cd-ext.test.zone"])
    code, out, _ = cli("check-domain", "cd-clean.test", "missing.cd-dmarc.test", "--only", "dmarc",
                       "--json", "--nameserver", dns.nameserver, "--timeout", "2")
    docs = [json.loads(line) for line in out.splitlines()]
    assert all("exit_code" in d for d in docs)
    assert max(d["exit_code"] for d in docs) == code


def test_session_refused_connection_has_facts_error(cli, scripted_peer) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from tests.servers.scripted_peer import Close

    peer = scripted_peer([Close()])
    port = peer.port
    peer.stop()
    done = subprocess.run([sys.executable, "-m", "smtpcli", "session", f"127.0.0.1:{port}",
                           "--json", "--timeout", "3"], input="NOOP\n", capture_output=True,
                          text=True, timeout=30)
    doc = json.loads(done.stdout)
    assert done.returncode == 3 and doc["exit_code"] == 3
    assert doc["facts"]["error"]["kind"] == "connect"
    assert "cannot connect" in doc["facts"]["error"]["message"]
    assert doc["summary"] != "no reply" and "cannot connect" in doc["summary"]
