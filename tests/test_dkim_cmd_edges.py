"""`smtpcli dkim`: an unsigned message fails verification (own finding id, exit 1, as dkimpy's
dkimverify); signing keeps the input's line endings (issue 14)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.inspect_msgs import as_json, ids, key, message, run_cli, write, zone

__all__ = ["run_cli"]


def test_verify_unsigned_message_fails_with_its_own_id(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    msg = write(tmp_path, message())
    code, out, _ = run_cli("dkim", "verify", "--json", str(msg))
    doc = as_json(out)
    assert code == 1
    assert list(ids(doc)) == ["dkim.unsigned"] and doc["status"] == "fail"


def test_dkimpy_dkimverify_agrees_unsigned_is_a_failure(tmp_path: Path) -> None:
    msg = write(tmp_path, message())
    done = subprocess.run([sys.executable, "-c", "import dkim.dkimverify as m; m.main()"],
                          stdin=msg.open("rb"), capture_output=True, timeout=30)
    assert done.returncode == 1


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_sign_keeps_the_input_line_endings_and_verifies(dns_server, run_cli, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                        ending: bytes) -> None:
    pair = key("rsa")
    key_file = tmp_path / "k.pem"
    key_file.write_bytes(pair.private)
    dns = dns_server(zones={"sender.test.": zone("sender.test.", [
        f's1._domainkey.sender.test. IN TXT "{pair.txt_value()}"'])})
    msg = write(tmp_path, message().replace(b"\r\n", ending))
    code, signed, err = run_cli("dkim", "sign", str(msg), "--key", str(key_file),
                                "--selector", "s1", "--domain", "sender.test")
    assert code == 0, err
    if ending == b"\n":
        assert b"\r" not in signed
    else:
        assert signed.count(b"\n") == signed.count(b"\r\n")
    assert signed.endswith(msg.read_bytes())
    code, out, _ = run_cli("dkim", "verify", "--json", "--nameserver", dns.nameserver,
                           str(write(tmp_path, signed, "signed.eml")))
    assert code == 0 and "dkim.pass" in ids(as_json(out))
