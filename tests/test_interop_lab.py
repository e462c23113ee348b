"""smtpcli against the lab's real servers (issue 12): send with every TLS mode and AUTH
mechanism, the stored bytes checked in each server's own mailbox; probe's TLS facts equal to
what ``openssl s_client`` (and, for STARTTLS, posttls-finger) sees on the same listener; a
scripted session; a short bench.

OpenSMTPD is sent to in plain text only: its TLS does not work with Debian 12's OpenSSL 3.0
(see tests/servers/lab/smtpd.conf).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.servers.mta_lab import (  # noqa: F401  (fixtures)
    DOMAIN,
    PASSWORD,
    USER,
    exim_lab,
    lab_cert,
    opensmtpd_lab,
    postfix_dovecot_lab,
)
from tests.servers.postfix import require_tool
from tests.test_interop import smtpcli

# One worker runs these (the lab servers start once for them); the security tests, which
# mostly wait, form a group of their own on another worker (docs/development.md).
pytestmark = [pytest.mark.interop, pytest.mark.xdist_group("mta-lab")]

ZONES = {"127.in-addr.arpa.": "1.0.0 IN PTR mx.mta.test.\n2.0.0 IN PTR mx.mta.test.\n",
         "mta.test.": "mx IN A 127.0.0.1\n"}

# (server, listener, AUTH mechanism or None); the TLS mode is the listener's.
SENDS = [
    ("exim", "default", None),
    ("exim", "submission", "PLAIN"),
    ("exim", "submission", "LOGIN"),
    ("exim", "submission", "CRAM-MD5"),
    ("exim", "submissions", "CRAM-MD5"),
    ("postfix", "default", None),
    ("postfix", "submission", "PLAIN"),
    ("postfix", "submission", "LOGIN"),
    ("postfix", "submission", "CRAM-MD5"),
    ("postfix", "submissions", "PLAIN"),
    ("dovecot", "submission", "CRAM-MD5"),
    ("dovecot", "submission", "PLAIN"),
    ("dovecot", "submissions", "LOGIN"),
    ("opensmtpd", "default", None),
]


@pytest.fixture(scope="module")
def lab(request):
    """server name -> (listeners, the Maildir its messages for alice end up in)."""
    exim = request.getfixturevalue("exim_lab")
    pfdv = request.getfixturevalue("postfix_dovecot_lab")
    smtpd = request.getfixturevalue("opensmtpd_lab")
    return {
        "exim": (exim.listeners, exim.maildir),
        "postfix": (pfdv.listeners, pfdv.postfix.maildir),
        # Dovecot's submission service relays into the Postfix instance.
        "dovecot": (pfdv.dovecot.listeners, pfdv.postfix.maildir),
        "opensmtpd": (smtpd.listeners, smtpd.maildir),
    }


def _message(tag: str) -> bytes:
    # 8-bit text, a leading dot to be dot-stuffed, a long-ish line: bytes a relay could alter.
    return (f"From: <{USER}@{DOMAIN}>\r\nTo: <{USER}@{DOMAIN}>\r\nSubject: lab {tag}\r\n"
            f"Message-ID: <{tag}@client.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            f"line one {tag}\r\n.a line starting with a dot\r\ncaf\u00e9 \u2713\r\n"
            + "x" * 900 + "\r\n").encode()


@pytest.mark.parametrize(("server", "role", "mech"), SENDS,
                         ids=[f"{s}-{r}-{m or 'noauth'}" for s, r, m in SENDS])
def test_send_stores_the_exact_bytes(lab, lab_cert, tmp_path, server, role, mech) -> None:  # noqa: F811
    listeners, maildir = lab[server]
    listener = listeners[role]
    tag = secrets.token_hex(6)
    data = tmp_path / "msg.eml"
    data.write_bytes(_message(tag))
    args = ["send", "-s", listener.url, "--data", str(data), "--mail-from", f"{USER}@{DOMAIN}",
            "-t", f"{USER}@{DOMAIN}", "--ehlo", "client.test", "--timeout", "10", "--json"]
    args += ["--tls", {"none": "none", "starttls": "starttls", "implicit": "implicit"}[listener.tls]]
    if listener.tls != "none":
        args += ["--cafile", str(lab_cert.ca_path)]
    if mech:
        secret = tmp_path / "pw"
        secret.write_text(PASSWORD + "\n")
        args += ["-u", USER, "--password-file", str(secret), "--auth", mech]
    done = smtpcli(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    report = json.loads(done.stdout)
    # plain text (OpenSMTPD) gets an info finding saying the message travelled unencrypted
    assert report["status"] == ("info" if listener.tls == "none" else "ok"), report["summary"]
    from tests.servers.mta_lab import wait_for_tag

    [stored] = wait_for_tag(maildir, f"Message-ID: <{tag}@", timeout=15)
    # The servers store with LF line ends (Maildir), add trace headers and, in submission mode,
    # headers a message lacks (Exim adds Date:): our header lines are there as sent, in order,
    # and the body is byte for byte the one sent.
    sent_head, _, sent_body = _message(tag).replace(b"\r\n", b"\n").partition(b"\n\n")
    head, _, body = stored.partition(b"\n\n")
    assert body == sent_body, (body[:200], sent_body[:200])
    lines = head.split(b"\n")
    positions = [lines.index(line) for line in sent_head.split(b"\n")]
    assert positions == sorted(positions), head
    if mech:  # the server's trace header records the authenticated TLS hop (RFC 3848 ESMTPSA)
        assert re.search(rb"with ESMTPSA", stored, re.I), head


# ---- probe facts against openssl s_client ----------------------------------------------------


def _s_client(listener, ca: str) -> dict[str, str]:
    openssl = require_tool("openssl")
    cmd = [openssl, "s_client", "-connect", listener.hostport, "-CAfile", ca, "-showcerts"]
    if listener.tls == "starttls":
        cmd += ["-starttls", "smtp"]
    done = subprocess.run(cmd, input="QUIT\n", capture_output=True, text=True, timeout=30)
    out = done.stdout + done.stderr
    proto = re.search(r"^\s*Protocol\s*:\s*(\S+)", out, re.M) or re.search(r", (TLSv[\d.]+), Cipher", out)
    cipher = re.search(r"^\s*Cipher\s*:\s*(\S+)", out, re.M) or re.search(r"Cipher is (\S+)", out)
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    verify = re.search(r"Verify return code: (\d+)", out)
    assert proto and cipher and pem and verify, out
    fp = subprocess.run([openssl, "x509", "-noout", "-fingerprint", "-sha256"], input=pem.group(0),
                        capture_output=True, text=True, timeout=30).stdout
    return {"protocol": proto.group(1), "cipher": cipher.group(1),
            "sha256": fp.split("=", 1)[1].strip().replace(":", "").lower(),
            "verified": verify.group(1) == "0"}


FACTS = [("exim", "default"), ("exim", "submissions"), ("postfix", "default"),
         ("postfix", "submissions"), ("dovecot", "submission"), ("dovecot", "submissions")]


def _posttls_finger(listener, ca: Path) -> dict[str, str | bool]:
    """posttls-finger's view of a STARTTLS listener (it has no implicit-TLS mode)."""
    tool = require_tool("posttls-finger")
    # Outside pytest's 0700 tmp_path: posttls-finger reads its CApath as the postfix user.
    work = Path(tempfile.mkdtemp(prefix="smtpcli-ptf-"))
    try:
        os.chmod(work, 0o755)
        (work / "main.cf").write_text("")
        (work / "ca.pem").write_bytes(ca.read_bytes())
        subprocess.run(["openssl", "rehash", str(work)], check=True, timeout=30)
        done = subprocess.run(
            [tool, "-c", "-l", "may", "-d", "sha256", "-P", str(work),
             f"[{listener.host}]:{listener.port}"],
            capture_output=True, text=True, timeout=30, env={**os.environ, "MAIL_CONFIG": str(work)})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = done.stdout + done.stderr
    conn = re.search(r"(\w+) TLS connection established to \S+: (\S+) with cipher (\S+)", out)
    fp = re.search(r"\bfingerprint=([0-9A-F:]+)", out)
    assert conn and fp, out
    return {"protocol": conn.group(2), "cipher": conn.group(3),
            "sha256": fp.group(1).replace(":", "").lower(), "verified": conn.group(1) == "Trusted"}


@pytest.mark.parametrize(("server", "role"), FACTS, ids=[f"{s}-{r}" for s, r in FACTS])
def test_probe_tls_facts_equal_openssl_and_posttls_finger(lab, lab_cert, dns_server, server, role) -> None:  # noqa: F811
    listener = lab[server][0][role]
    ca = str(lab_cert.ca_path)
    seen = _s_client(listener, ca)
    if listener.tls == "starttls":
        assert _posttls_finger(listener, lab_cert.ca_path) == seen
    dns = dns_server(zones=ZONES)
    done = smtpcli("probe", listener.url, "--cafile", ca, "--no-tls-versions", "--timeout", "10",
                   "--nameserver", dns.nameserver, "--json")
    assert done.returncode in (0, 1), done.stderr + done.stdout
    [host] = json.loads(done.stdout)["facts"]["hosts"]
    tls = host["tls"]
    assert (tls["protocol"], tls["cipher"], tls["chain"][0]["sha256"], tls["verified"]) == (
        seen["protocol"], seen["cipher"], seen["sha256"], seen["verified"])


# ---- a scripted session and a short bench on each server -------------------------------------

SESSIONS = [("exim", "submission"), ("postfix", "submission"), ("dovecot", "submission")]


@pytest.mark.parametrize(("server", "role"), SESSIONS, ids=[f"{s}-{r}" for s, r in SESSIONS])
def test_scripted_session_starttls_auth_and_mail(lab, lab_cert, tmp_path, server, role) -> None:  # noqa: F811
    listener = lab[server][0][role]
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    script = (f"EHLO client.test\n.starttls\n.auth PLAIN {USER}\nMAIL FROM:<{USER}@{DOMAIN}>\n"
              f"RCPT TO:<{USER}@{DOMAIN}>\nRSET\nQUIT\n")
    done = smtpcli("session", listener.hostport, "--tls", "none", "--cafile", str(lab_cert.ca_path),
                   "--password-file", str(secret), "--timeout", "10", input=script)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b235\b", done.stdout), done.stdout  # AUTH succeeded
    assert PASSWORD not in done.stdout + done.stderr


def test_scripted_session_in_plain_text_on_opensmtpd(lab) -> None:
    listener = lab["opensmtpd"][0]["default"]
    script = (f"EHLO client.test\nMAIL FROM:<>\nRCPT TO:<nosuchuser@{DOMAIN}>\n"
              f"RCPT TO:<{USER}@{DOMAIN}>\nQUIT\n")
    done = smtpcli("session", listener.hostport, "--tls", "none", "--timeout", "10", input=script)
    assert done.returncode == 0, done.stdout + done.stderr  # the last reply (221) decides
    assert "550 Invalid recipient" in done.stdout and re.search(r"\b250 2\.1\.5\b", done.stdout)


BENCHES = [("exim", "default"), ("postfix", "default"), ("opensmtpd", "default")]


@pytest.mark.parametrize(("server", "role"), BENCHES, ids=[f"{s}-{r}" for s, r in BENCHES])
def test_bench_briefly(lab, server, role) -> None:
    listener = lab[server][0][role]
    done = smtpcli("bench", listener.hostport, "--messages", "20", "--concurrency", "2",
                   "--tls", "none", "-t", f"{USER}@{DOMAIN}", "--timeout", "10", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    facts = json.loads(done.stdout)["facts"]
    assert facts["messages"] == {"attempted": 20, "accepted": 20, "rejected": 0, "failed": 0}
    assert facts["messages_per_s"] > 0
