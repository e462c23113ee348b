# ruff: noqa: F811  (fixtures are imported, then requested by name)
"""Every option in --help is exercised through the real command line: the options the other
test files reach only through the library (ServeConfig, BenchConfig) or not at all."""

from __future__ import annotations

import json
import smtplib
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers.bdat_server import bdat_server  # noqa: F401  (fixture)
from tests.servers.serve_bench_helpers import capture_server, start_serve_process  # noqa: F401

BASE = ("-f", "Ann <ann@example.test>", "-t", "bob@example.test")


def _rsa_key(path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    return path


# ---- send ----------------------------------------------------------------------------------

def test_send_message_options_in_the_dry_run(tmp_path) -> None:
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    # A subprocess: with --8bit and a Latin-1 charset the dry run prints the message's own
    # bytes, which are not UTF-8.
    done = subprocess.run(
        [sys.executable, "-m", "smtpcli", "send", "--dry-run", "-s", "127.0.0.1:25", *BASE,
         "--mail-from", "bounce@example.test", "--cc", "cy@example.test", "--body", "caf\u00e9",
         "--charset", "iso-8859-1", "--8bit", "--html", '<img src="cid:logo.png">',
         "--inline", str(tmp_path / "logo.png"), "--dkim-key", str(_rsa_key(tmp_path / "k.pem")),
         "--dkim-selector", "s1", "--dkim-domain", "signer.example"],
        capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    envelope, message = done.stdout.split(b"\n\n", 1)
    assert envelope.splitlines() == [b"MAIL FROM:<bounce@example.test>",
                                     b"RCPT TO:<bob@example.test>", b"RCPT TO:<cy@example.test>"]
    assert b"From: Ann <ann@example.test>" in message and b"Cc: cy@example.test" in message
    assert b"d=signer.example;" in message  # --dkim-domain, not the From domain
    assert b'charset="iso-8859-1"' in message and b"Content-Transfer-Encoding: 8bit" in message
    assert b"caf\xe9" in message  # Latin-1, sent as 8-bit (no quoted-printable)
    assert b"multipart/related" in message and b"Content-ID: <logo.png>" in message


def test_send_connection_options(cli, smtp_server) -> None:
    server = smtp_server("starttls")
    code, out, err = cli("send", "-s", f"127.0.0.1:{server.port}", "-4", "--bind", "127.0.0.1",
                         "--tls-min-version", "1.3", "--cafile", server.ca_path, *BASE, "--json")
    assert code == 0, err
    facts = json.loads(out)["facts"]
    assert facts["tls"]["protocol"] == "TLSv1.3"
    assert server.messages[0].peer[0] == "127.0.0.1"
    # -6 to an IPv4 literal: nothing to connect to, said in one line (exit 3).
    code, _, err = cli("send", "-s", f"127.0.0.1:{server.port}", "-6", *BASE)
    assert code == 3 and len(err.strip().splitlines()) == 1


def test_send_rcpt_param_and_no_pipelining(cli, bdat_server) -> None:  # noqa: F811
    server = bdat_server().start()
    code, out, err = cli("send", "-s", f"127.0.0.1:{server.port}", "--tls", "none", *BASE,
                         "--rcpt-param", "X-TAG=1", "--no-pipelining", "--json")
    assert code == 0, err
    assert json.loads(out)["facts"]["pipelined"] is False
    assert b"RCPT TO:<bob@example.test> X-TAG=1\r\n" in server.commands


# ---- serve ---------------------------------------------------------------------------------

def _insecure() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return ctx


def test_serve_tls_auth_limits_extensions_and_stores(tmp_path) -> None:
    mbox, jsonl = tmp_path / "mbox", tmp_path / "m.jsonl"
    sp = start_serve_process(
        "--hostname", "capture.test", "--tls-self-signed", "--require-starttls",
        "--auth-accept-any", "--max-size", "4000", "--no-smtputf8", "--no-pipelining",
        "--no-8bitmime", "--hide", "HELP", "--mbox", str(mbox), "--jsonl", str(jsonl),
        "--seed", "7", "--count", "1")
    with smtplib.SMTP("127.0.0.1", sp.port, timeout=10) as client:
        code, banner = client.ehlo("client.test")
        assert banner.startswith(b"capture.test")
        for hidden in ("pipelining", "8bitmime", "smtputf8", "help"):
            assert not client.has_extn(hidden), hidden
        assert client.esmtp_features["size"] == "4000"
        assert client.mail("a@example.test")[0] == 530  # --require-starttls
        client.starttls(context=_insecure())
        client.ehlo("client.test")
        client.login("anyone", "anything")  # --auth-accept-any
        refused = client.mail("a@example.test", ["SIZE=5000"])
        assert refused[0] == 552  # --max-size
        client.sendmail("a@example.test", ["b@example.test"], b"Subject: hi\r\n\r\nbody\r\n")
    code, events, err = sp.finish()
    assert code == 0, err
    assert mbox.read_bytes().startswith(b"From a@example.test ")
    [record] = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert record["auth"]["user"] == "anyone" and record["tls"]


def test_serve_implicit_tls_and_auth_before_tls(tmp_path) -> None:
    sp = start_serve_process("--implicit-tls", "--tls-self-signed", "--count", "1")
    with smtplib.SMTP_SSL("127.0.0.1", sp.port, context=_insecure(), timeout=10) as client:
        client.sendmail("a@example.test", ["b@example.test"], b"Subject: x\r\n\r\ny\r\n")
    assert sp.finish()[0] == 0
    sp = start_serve_process("--auth-accept-any", "--auth-plaintext", "--exit-after", "5")
    with smtplib.SMTP("127.0.0.1", sp.port, timeout=10) as client:
        client.ehlo("client.test")
        assert client.has_extn("auth")  # offered without TLS
    sp.terminate()
    assert sp.finish()[0] == 0


def test_serve_greylist_and_tarpit() -> None:
    sp = start_serve_process("--greylist", "60", "--tarpit", "--tarpit-delay", "20",
                             "--exit-after", "10")
    with smtplib.SMTP("127.0.0.1", sp.port, timeout=10) as client:
        client.ehlo("client.test")
        client.mail("a@example.test")
        code, text = client.rcpt("b@example.test")
        assert code == 451 and b"Greylisted" in text
    sp.terminate()
    rc, events, _ = sp.finish()
    assert rc == 0 and any(e.get("event") == "fault" for e in events)


def test_serve_delay_and_drop_from_the_command_line() -> None:
    sp = start_serve_process("--delay", "rcpt:300", "--drop", "data", "--exit-after", "10")
    with smtplib.SMTP("127.0.0.1", sp.port, timeout=10) as client:
        client.ehlo("client.test")
        client.mail("a@example.test")
        started = time.monotonic()
        assert client.rcpt("b@example.test")[0] == 250
        assert time.monotonic() - started >= 0.25  # the scripted delay, not a speed claim
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.data(b"Subject: x\r\n\r\ny\r\n")
    sp.terminate()
    rc, events, _ = sp.finish()
    actions = {e.get("action") for e in events if e.get("event") == "fault"}
    assert rc == 0 and {"delay", "drop"} <= actions


# ---- bench, probe, check-domain, inspect ---------------------------------------------------

def test_bench_size_rate_pipelining_per_connection(cli, capture_server) -> None:
    srv = capture_server()
    code, out, err = cli("bench", f"127.0.0.1:{srv.port}", "-n", "12", "-c", "2",
                         "--size", "2000", "--rate", "200", "--pipelining",
                         "--per-connection", "3", "--json")
    assert code == 0, err
    facts = json.loads(out)["facts"]
    assert facts["messages"]["accepted"] == 12 and facts["size"] == 2000
    assert facts["pipelining_used"] is True and facts["rate_limit"] == 200
    assert facts["connections"]["opened"] >= 4  # 12 messages, at most 3 per connection
    assert all(abs(len(m.content) - 2000) < 100 for m in srv.messages)


def test_probe_security_tuning_and_address_family(cli, capture_server, dns_server) -> None:
    srv = capture_server()
    dns = dns_server(zones={"127.in-addr.arpa.": "1.0.0 IN PTR localhost.test.\n",
                            "localhost.test.": "@ IN A 127.0.0.1\n"})
    code, out, _ = cli("probe", f"127.0.0.1:{srv.port}", "-4", "--nameserver", dns.nameserver,
                       "--no-tls-versions", "--checks", "relay,enum", "--relay-domain",
                       "outside.example", "--known-user", "postmaster", "--json")
    doc = json.loads(out)
    relay = next(f for f in doc["findings"] if f["id"] == "security.open-relay")
    assert "outside.example" in json.dumps(relay["data"])
    enum = [f for f in doc["findings"] if f["id"] == "security.vrfy-enum"]
    assert enum and "postmaster" in json.dumps(enum[0].get("data", {}))
    # -6 with an IPv4 literal is a contradiction in the command line: usage error, one line.
    code, _, err = cli("probe", f"127.0.0.1:{srv.port}", "-6", "--nameserver", dns.nameserver)
    assert code == 2 and err.strip() == "smtpcli: -6 given, but 127.0.0.1 is an IPv4 address"


def test_probe_smuggling_rcpt(cli, capture_server, dns_server) -> None:
    srv = capture_server()
    dns = dns_server(zones={"127.in-addr.arpa.": "1.0.0 IN PTR localhost.test.\n",
                            "localhost.test.": "@ IN A 127.0.0.1\n"})
    # --reply-wait: serve never answers a non-standard sequence, so each of the dozen sequences
    # waits it out (twice); the 2 s default would make this test wait ~50 s.
    _, out, _ = cli("probe", f"127.0.0.1:{srv.port}", "--nameserver", dns.nameserver,
                    "--no-tls-versions", "--checks", "smuggling", "--smuggling-rcpt",
                    "sink@example.test", "--timeout", "3", "--reply-wait", "0.1", "--json")
    assert srv.messages and all(m.rcpt_tos == ["sink@example.test"] for m in srv.messages)
    smuggling = next(f for f in json.loads(out)["findings"] if f["id"] == "security.smuggling")
    assert smuggling["data"]["reply_wait_s"] == 0.1
    assert {s["verdict"] for s in smuggling["data"]["sequences"]} == {"data"}


HELO_ZONE = {"helo.test.": '@ IN TXT "v=spf1 ip4:192.0.2.1 -all"\n'}


def test_check_domain_and_inspect_helo(cli, dns_server, tmp_path) -> None:
    dns = dns_server(zones=HELO_ZONE)
    # With an empty sender, SPF is evaluated for the HELO name (RFC 7208 2.3).
    code, out, _ = cli("check-domain", "helo.test", "--nameserver", dns.nameserver, "--only",
                       "spf", "--no-dnsbl", "--ip", "192.0.2.1", "--sender", "",
                       "--helo", "helo.test", "--json")
    result = next(f for f in json.loads(out)["findings"] if f["id"] == "spf.result")
    assert result["data"]["result"] == "pass"
    message = tmp_path / "m.eml"
    message.write_bytes(b"From: a@helo.test\r\nSubject: x\r\n\r\nbody\r\n")
    code, out, _ = cli("inspect", str(message), "--nameserver", dns.nameserver, "--ip",
                       "192.0.2.1", "--helo", "helo.test", "--json")
    spf = json.loads(out)["facts"]["spf"]
    assert spf["helo"] == "helo.test" and spf["result"] == "pass"
