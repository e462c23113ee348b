"""`smtpcli dkim keygen|sign|verify|check-key` against the loopback DNS fixture."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import dns.zone
import pytest

from smtpcli.checks.dkimkeys import load_private_key, split_txt, zone_line
from tests.servers.inspect_msgs import as_json, ids, key, key_line, message, run_cli, write, zone

__all__ = ["run_cli"]


@pytest.mark.parametrize("key_type,bits", [("rsa", 2048), ("rsa", 4096), ("ed25519", 256)])
def test_keygen_writes_0600_and_prints_record(run_cli, tmp_path: Path, key_type: str,
                                              bits: int) -> None:
    out_file = tmp_path / "k.key"
    args = ["dkim", "keygen", "--json", "--domain", "Example.TEST.", "--selector", "s2024",
            "--type", key_type, "--out", str(out_file)]
    if key_type == "rsa":
        args += ["--bits", str(bits)]
    code, out, _ = run_cli(*args)
    assert code == 0
    facts = as_json(out)["facts"]
    assert stat.S_IMODE(os.stat(out_file).st_mode) == 0o600
    assert facts["record_name"] == "s2024._domainkey.example.test"
    assert facts["bits"] == bits
    assert all(len(s.encode()) <= 255 for s in facts["txt_strings"])
    assert "".join(facts["txt_strings"]) == facts["txt_record"]
    assert facts["txt_record"].startswith(f"v=DKIM1; k={key_type}; p=")
    # The zone-file line loads in a real zone parser and gives back the same record.
    z = dns.zone.from_text("$TTL 300\n" + facts["zone_line"] + "\n", origin="example.test.",
                           relativize=False, check_origin=False)
    rdata = z.find_rdataset("s2024._domainkey.example.test.", "TXT")[0]
    assert b"".join(rdata.strings).decode() == facts["txt_record"]
    algorithm, _ = load_private_key(out_file.read_bytes())
    assert algorithm == ("ed25519-sha256" if key_type == "ed25519" else "rsa-sha256")


def test_keygen_refuses_to_overwrite(run_cli, tmp_path: Path) -> None:
    out_file = tmp_path / "k.key"
    out_file.write_text("precious")
    code, _, err = run_cli("dkim", "keygen", "--domain", "d.test", "--selector", "s",
                           "--type", "ed25519", "--out", str(out_file))
    assert code == 2 and "--force" in err and out_file.read_text() == "precious"
    code, out, _ = run_cli("dkim", "keygen", "--domain", "d.test", "--selector", "s",
                           "--type", "ed25519", "--out", str(out_file), "--force")
    assert code == 0 and out_file.read_text() != "precious"
    assert stat.S_IMODE(os.stat(out_file).st_mode) == 0o600
    assert b"IN TXT" in out


def test_split_txt_boundaries() -> None:
    assert split_txt("a" * 255) == ["a" * 255]
    assert split_txt("a" * 256) == ["a" * 255, "a"]
    assert split_txt("") == [""]
    line = zone_line("s", "d.test", "x" * 300)
    assert line.startswith("s._domainkey.d.test. IN TXT ( ") and line.count('"') == 4


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_keygen_sign_verify_roundtrip(dns_server, run_cli, tmp_path: Path,
                                      key_type: str) -> None:
    key_file = tmp_path / "sel.key"
    code, out, _ = run_cli("dkim", "keygen", "--json", "--domain", "sender.test", "--selector",
                           "sel", "--type", key_type, "--bits", "1024", "--out", str(key_file))
    assert code == 0
    record_line = as_json(out)["facts"]["zone_line"]
    dns = dns_server(zones={"sender.test.": zone("sender.test.", [record_line])})
    msg = write(tmp_path, message())
    code, signed, err = run_cli("dkim", "sign", str(msg), "--key", str(key_file),
                                "--selector", "sel", "--domain", "sender.test")
    assert code == 0, err
    assert signed.startswith(b"DKIM-Signature: ") and signed.endswith(msg.read_bytes())
    signed_file = write(tmp_path, signed, "signed.eml")
    code, out, _ = run_cli("dkim", "verify", "--json", "--nameserver", dns.nameserver,
                           str(signed_file))
    doc = as_json(out)
    assert code == 0 and "dkim.pass" in ids(doc)
    assert doc["facts"]["dkim"][0]["key_type"] == key_type
    # The same file with a changed body fails verification with the reason.
    write(tmp_path, signed.replace(b"numbers", b"Numbers"), "bad.eml")
    code, out, _ = run_cli("dkim", "verify", "--json", "--nameserver", dns.nameserver,
                           str(tmp_path / "bad.eml"))
    assert code == 1 and "dkim.body-hash-mismatch" in ids(as_json(out))


def test_sign_options_and_json(run_cli, tmp_path: Path) -> None:
    pair = key("rsa")
    key_file = tmp_path / "k.pem"
    key_file.write_bytes(pair.private)
    msg = write(tmp_path, message(extra=["List-Unsubscribe: <https://sender.test/u>"]))
    code, out, _ = run_cli("dkim", "sign", "--json", str(msg), "--key", str(key_file),
                           "--selector", "s1", "--domain", "sender.test",
                           "--headers", "from:subject:list-unsubscribe", "--length",
                           "-c", "simple/simple")
    facts = as_json(out)["facts"]
    assert code == 0
    sig = facts["dkim_signature"]
    assert "c=simple/simple" in sig and "l=" in sig and "list-unsubscribe" in sig


def test_sign_bad_key_and_missing_file(run_cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not a key at all")
    msg = write(tmp_path, message())
    code, _, err = run_cli("dkim", "sign", str(msg), "--key", str(bad), "--selector", "s",
                           "--domain", "d.test")
    assert code == 2 and "bad.key" in err
    code, _, err = run_cli("dkim", "sign", str(tmp_path / "nope.eml"), "--key", str(bad),
                           "--selector", "s", "--domain", "d.test")
    assert code == 2 and "cannot read" in err


def test_check_key_states(dns_server, run_cli) -> None:
    pair = key("rsa")
    dns = dns_server(zones={"sender.test.": zone("sender.test.", [
        key_line("good", "sender.test", pair),
        key_line("gone", "sender.test", value="v=DKIM1; k=rsa; p="),
        key_line("junk", "sender.test", value="v=DKIM1; k=rsa; p=%%%notbase64"),
        key_line("fail", "sender.test", pair),
    ])})
    dns.behaviour["fail._domainkey.sender.test"] = "servfail"

    def check(selector: str) -> tuple[int, dict]:
        code, out, _ = run_cli("dkim", "check-key", "--json", "--nameserver", dns.nameserver,
                               "--dns-retries", "0", "--domain", "sender.test",
                               "--selector", selector)
        return code, as_json(out)

    code, doc = check("good")
    assert code == 0 and doc["facts"]["record"] == pair.txt_value()
    # A 1024-bit key is usable but below the recommended 2048 bits (warning, exit 0).
    assert any(f["status"] in ("ok", "warn") for f in doc["findings"])
    code, doc = check("missing")
    assert code == 1 and "dkim.key-not-found" in ids(doc)
    code, doc = check("gone")
    assert "revoked" in " ".join(f["id"] for f in doc["findings"])
    code, doc = check("junk")
    assert code == 1
    code, doc = check("fail")
    assert code == 3 and "dkim.key-lookup-failed" in ids(doc)
