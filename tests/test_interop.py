"""Interoperability with real mail software: Postfix, its smtp-source/smtp-sink/posttls-finger,
and swaks. Every test runs the real `smtpcli` command as a subprocess against (or for) a real
peer on loopback. They skip on a machine without the Debian packages, never in CI
(SMTPCLI_REQUIRE_INTEROP)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.servers.postfix import postfix, postfix_pool, require_tool  # noqa: F401  (fixtures)

pytestmark = pytest.mark.interop

SMTPCLI = str(Path(sys.executable).parent / "smtpcli")


def smtpcli(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMTPCLI_")}
    return subprocess.run([SMTPCLI, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, **kw)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postfix_config(tmp_path: Path) -> dict[str, str]:
    """Postfix's client tools read main.cf; an empty one in a private directory is enough."""
    conf = tmp_path / "pfconf"
    conf.mkdir(exist_ok=True)
    (conf / "main.cf").write_text("")
    return {**os.environ, "MAIL_CONFIG": str(conf)}


class ServeProcess:
    """`smtpcli serve --json` as a subprocess storing into a Maildir; port from its first line."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.maildir = tmp_path / f"serve-md-{time.monotonic_ns()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMTPCLI_")}
        self.proc = subprocess.Popen(
            [SMTPCLI, "serve", "--listen", "127.0.0.1:0", "--json", "--no-fsync",
             "--maildir", str(self.maildir), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first:
            raise RuntimeError(f"serve did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")
        self.listening = json.loads(first)
        self.port = int(self.listening["port"])
        self.summary: dict | None = None

    def messages(self) -> list[bytes]:
        files = sorted(p for sub in ("new", "cur") for p in (self.maildir / sub).glob("*"))
        return [p.read_bytes() for p in files]

    def wait_messages(self, count: int, timeout: float = 20) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(found := self.messages()) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return found

    def stop(self) -> dict:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=20)
        lines = [json.loads(line) for line in out.splitlines() if line.strip()]
        self.summary = next(d for d in reversed(lines) if d.get("event") == "shutdown")
        return self.summary


@pytest.fixture
def serve_proc(tmp_path):
    started: list[ServeProcess] = []

    def factory(*args: str) -> ServeProcess:
        proc = ServeProcess(tmp_path, *args)
        started.append(proc)
        return proc

    yield factory
    for proc in started:
        if proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait(10)


# ---- smtpcli send -> Postfix ------------------------------------------------------------

@pytest.mark.xdist_group("postfix-tls")
def test_send_delivers_into_postfix_with_starttls(postfix, tls_certs) -> None:  # noqa: F811
    pf = postfix(tls=tls_certs.valid)
    done = smtpcli("send", "-s", f"127.0.0.1:{pf.port}", "--tls", "starttls",
                   "--cafile", str(tls_certs.ca_path), "--ehlo", "client.test",
                   "-f", "sender@client.test", "-t", "someone@pf.test",
                   "--subject", "interop send via STARTTLS", "--body", "hello postfix", "--json")
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout)
    assert report["status"] == "ok"
    [message] = pf.delivered(1)
    assert b"Subject: interop send via STARTTLS" in message
    assert b"hello postfix" in message
    # Postfix records the hop as ESMTPS: the message really travelled over TLS.
    assert re.search(rb"Received: from client\.test .*\r?\n\s+by mx\.pf\.test \(Postfix\) with ESMTPS",
                     message)


# ---- smtpcli probe vs posttls-finger ------------------------------------------------------

def _posttls_finger(pf, capath: Path) -> dict[str, str]:
    tool = require_tool("posttls-finger")
    done = subprocess.run(
        [tool, "-c", "-l", "may", "-d", "sha256", "-P", str(capath), f"[127.0.0.1]:{pf.port}"],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "MAIL_CONFIG": str(pf.config_dir)})
    out = done.stdout + done.stderr
    conn = re.search(r"(\w+) TLS connection established to \S+: (\S+) with cipher (\S+)", out)
    fp = re.search(r"\bfingerprint=([0-9A-F:]+)", out)
    assert conn and fp, out
    return {"trust": conn.group(1), "protocol": conn.group(2), "cipher": conn.group(3),
            "sha256": fp.group(1).replace(":", "").lower()}


PTR_ZONES = {
    "127.in-addr.arpa.": "1.0.0 IN PTR mx.pf.test.\n",
    "pf.test.": "mx IN A 127.0.0.1\n",
}


@pytest.mark.xdist_group("postfix-tls")
def test_probe_reports_what_posttls_finger_reports(postfix, tls_certs, dns_server) -> None:  # noqa: F811
    pf = postfix(tls=tls_certs.valid)
    dns = dns_server(zones=PTR_ZONES)  # probe's reverse DNS goes here, never to the system
    # Outside pytest's 0700 tmp_path: posttls-finger reads CApath as the postfix user.
    capath = Path(tempfile.mkdtemp(prefix="smtpcli-capath-"))
    try:
        os.chmod(capath, 0o755)
        (capath / "ca.pem").write_bytes(tls_certs.ca_path.read_bytes())
        subprocess.run(["openssl", "rehash", str(capath)], check=True, timeout=30)
        finger = _posttls_finger(pf, capath)
    finally:
        shutil.rmtree(capath, ignore_errors=True)
    done = smtpcli("probe", f"127.0.0.1:{pf.port}", "--cafile", str(tls_certs.ca_path),
                   "--no-tls-versions", "--nameserver", dns.nameserver, "--json")
    # Only the facts are compared here; findings (DANE, MTA-STS...) may fail or warn.
    assert done.returncode in (0, 1), done.stderr + done.stdout
    [host] = json.loads(done.stdout)["facts"]["hosts"]
    tls = host["tls"]
    assert tls["protocol"] == finger["protocol"]
    assert tls["cipher"] == finger["cipher"]
    assert tls["chain"][0]["sha256"] == finger["sha256"]
    assert finger["trust"] == "Trusted" and tls["verified"] is True


# ---- swaks -> smtpcli serve ---------------------------------------------------------------

def _swaks_sent_body(output: str) -> bytes:
    """The message swaks sent, rebuilt from its transcript: the ' ~> ' / ' -> ' lines between
    the 354 and the lone '.', dot-stuffing undone (RFC 5321 4.5.2)."""
    lines: list[str] = []
    inside = False
    for line in output.splitlines():
        if re.match(r"^\s*<[~-]\s+354", line):
            inside = True
            continue
        m = re.match(r"^ [~-]> ?(.*)$", line)
        if inside and m:
            text = m.group(1)
            if text == ".":
                break
            lines.append(text[1:] if text.startswith(".") else text)
    return "".join(f"{line}\r\n" for line in lines).encode()


SWAKS_MODES = {
    "plain": [],
    "starttls": ["--tls"],
    "auth": ["--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "s3cret"],
    "pipelining": ["--pipeline"],
}


@pytest.mark.parametrize("mode", sorted(SWAKS_MODES))
def test_swaks_into_serve_stores_what_swaks_sent(mode, serve_proc, tls_certs, tmp_path) -> None:
    swaks = require_tool("swaks")
    users = tmp_path / "users.txt"
    users.write_text("alice:s3cret\n")
    args = ["--tls-cert", str(tls_certs.valid.cert_path), "--tls-key", str(tls_certs.valid.key_path),
            "--no-received"]  # compare what swaks sent with what serve stored, byte for byte
    if mode == "auth":
        args += ["--auth-users", str(users), "--auth-required"]
    server = serve_proc(*args)
    message = tmp_path / "message.eml"
    message.write_bytes(
        b"From: a@swaks.test\r\nTo: b@serve.test\r\nSubject: swaks " + mode.encode() + b"\r\n\r\n"
        b"first line\r\n.a line starting with a dot\r\n\xc3\xa9 8bit\r\n")
    done = subprocess.run(
        [swaks, "--server", "127.0.0.1", "--port", str(server.port), "--from", "a@swaks.test",
         "--to", "b@serve.test", "--data", str(message), "--timeout", "20", *SWAKS_MODES[mode]],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    [stored] = server.wait_messages(1)
    sent = _swaks_sent_body(done.stdout)
    assert b".a line starting with a dot" in sent  # dot-stuffing undone on both sides
    assert stored == sent
    summary = server.stop()["facts"]["summary"]
    assert summary["messages"] == 1
    if mode in ("starttls", "auth"):
        assert "STARTTLS" in done.stdout and "TLS started" in done.stdout
    if mode == "auth":
        assert re.search(r"<~\s+235", done.stdout)
    if mode == "pipelining":
        assert "PIPELINING" in done.stdout


# ---- smtp-source -> serve, bench -> smtp-sink -----------------------------------------------

def test_smtp_source_into_serve_counts_agree(serve_proc, tmp_path) -> None:
    source = require_tool("smtp-source")
    server = serve_proc()
    done = subprocess.run([source, "-m", "30", "-s", "3", "-f", "a@source.test",
                           "-t", "b@serve.test", f"127.0.0.1:{server.port}"],
                          capture_output=True, text=True, timeout=60, env=postfix_config(tmp_path))
    assert done.returncode == 0, done.stderr
    assert len(server.wait_messages(30)) == 30
    assert server.stop()["facts"]["summary"]["messages"] == 30


def _start_sink(sink: str, dump: Path, tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    """smtp-sink on a free port. It needs the port up front, and another process may bind it
    first: the greeting names this sink (-h TOKEN), or it is stopped and tried on another."""
    for _ in range(5):
        token = f"sink-{time.monotonic_ns()}.test"
        port = free_port()
        proc = subprocess.Popen([sink, "-u", "postfix", "-h", token, "-d", f"{dump}/m-",
                                 f"127.0.0.1:{port}", "64"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=postfix_config(tmp_path))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.settimeout(5)
                    if token.encode() in sock.recv(512):
                        return proc, port
                    break  # someone else's server on that port
            except OSError:
                time.sleep(0.05)
        proc.terminate()
        proc.communicate(timeout=10)
    raise AssertionError("smtp-sink did not start on a free port")


def test_bench_into_smtp_sink_counts_agree(tmp_path) -> None:
    sink = require_tool("smtp-sink")
    # smtp-sink runs as the postfix user (-u): its dump directory must be reachable for it,
    # which pytest's 0700 tmp_path is not.
    dump = Path(tempfile.mkdtemp(prefix="smtpcli-sink-"))
    os.chmod(dump, 0o777)
    proc, port = _start_sink(sink, dump, tmp_path)
    try:
        done = smtpcli("bench", f"127.0.0.1:{port}", "-n", "40", "-c", "4", "--json")
        assert done.returncode == 0, done.stderr
        messages = json.loads(done.stdout)["facts"]["messages"]
        assert messages["accepted"] == 40 and messages["attempted"] == 40
        deadline = time.monotonic() + 10
        while len(list(dump.iterdir())) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(list(dump.iterdir())) == 40
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
        shutil.rmtree(dump, ignore_errors=True)


# ---- send -> Postfix -> serve, then inspect ---------------------------------------------------

@pytest.fixture(scope="module")
def relay_chain(postfix_pool, tls_certs, tmp_path_factory):  # noqa: F811
    """Postfix relaying every other domain to an `smtpcli serve`: both started once for the
    tests of this module that need the chain (each tells its own message by a unique subject)."""
    server = ServeProcess(tmp_path_factory.mktemp("relay"))
    try:
        pf = postfix_pool.get(tls=tls_certs.valid, relayhost=f"[127.0.0.1]:{server.port}")
        yield pf, server
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(10)


def _relayed(relay_chain, tls_certs):
    pf, server = relay_chain
    subject = f"two hops {time.monotonic_ns()}"
    done = smtpcli("send", "-s", f"127.0.0.1:{pf.port}", "--tls", "starttls",
                   "--cafile", str(tls_certs.ca_path), "--ehlo", "client.test",
                   "-f", "sender@client.test", "-t", "someone@elsewhere.test",
                   "--subject", subject)
    assert done.returncode == 0, done.stderr

    def arrived() -> list[bytes]:
        return [m for m in server.messages() if f"Subject: {subject}".encode() in m]

    deadline = time.monotonic() + 30
    while not arrived() and time.monotonic() < deadline:
        pf.flush()
        time.sleep(0.2)
    [message] = arrived()
    path = server.maildir.parent / f"arrived-{time.monotonic_ns()}.eml"
    path.write_bytes(message)
    inspected = smtpcli("inspect", "--offline", "--json", str(path))
    assert inspected.returncode in (0, 1), inspected.stderr
    return json.loads(inspected.stdout)["facts"]["received"]["hops"]


@pytest.mark.xdist_group("postfix-relay")
def test_send_through_postfix_to_serve_then_inspect(relay_chain, tls_certs) -> None:
    hops = _relayed(relay_chain, tls_certs)
    # Postfix's hop: from our client, by Postfix, over TLS.
    postfix_hop = next(h for h in hops if h["by"] == "mx.pf.test")
    assert postfix_hop["from"] == "client.test" and postfix_hop["from_ip"] == "127.0.0.1"
    assert postfix_hop["with"] == "ESMTPS" and postfix_hop["tls"] is True


@pytest.mark.xdist_group("postfix-relay")
def test_received_chain_shows_the_serve_hop(relay_chain, tls_certs) -> None:
    hops = _relayed(relay_chain, tls_certs)  # oldest first
    assert [h["by"] for h in hops] == ["mx.pf.test", "smtpcli.test"]
    serve_hop = hops[1]
    assert serve_hop["from"] == "mx.pf.test" and serve_hop["from_ip"] == "127.0.0.1"
    assert serve_hop["with"] == "ESMTP"
