"""``smtpcli send`` against misbehaving peers (scripted): each case ends with the right exit code
and one clear line, within the timeout."""

from __future__ import annotations

import json
import time

import pytest

from smtpcli.cli import main as main_module
from smtpcli.cli.state import STATE
from tests.servers.scripted_peer import Close, Expect, ExpectData, Send, SendForever

BASE = ("--tls", "none", "-f", "alice@example.test", "-t", "bob@example.test")
EHLO_OK = Send(b"250-peer.example.test\r\n250-8BITMIME\r\n250 SIZE 1000000\r\n")


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]):
    def _run(*args: str) -> tuple[int, str, str, float]:
        STATE.json = STATE.traceback = False
        began = time.monotonic()
        with pytest.raises(SystemExit) as exc:
            main_module.main(["send", *args])
        out, err = capsys.readouterr()
        return int(exc.value.code or 0), out, err, time.monotonic() - began

    return _run


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("smtpcli: ") and "Traceback" not in err
    return lines[0]


def target(peer) -> str:
    return f"127.0.0.1:{peer.port}"


def test_greeting_never_comes(run, scripted_peer) -> None:
    peer = scripted_peer([Expect(b"EHLO", timeout=10)])
    code, _, err, took = run("-s", target(peer), *BASE, "--timeout", "0.3")
    assert code == 3
    assert "no reply from" in one_line(err) and "within 0.3s during banner" in err
    assert took < 4


def test_one_mib_reply_line(run, scripted_peer) -> None:
    peer = scripted_peer([Send(b"220 " + b"x" * (1 << 20) + b"\r\n"), Expect(b"EHLO")])
    code, out, err, took = run("-s", target(peer), *BASE, "--timeout", "3", "--json")
    assert code == 3
    assert "longer than 8192 bytes during banner" in one_line(err)
    doc = json.loads(out)
    assert doc["findings"][0]["id"] == "smtp.protocol-error"
    # The transcript keeps a cut-down line, never the whole MiB.
    assert max(len(e["line"]) for e in doc["facts"]["transcript"]) < 2000
    assert took < 6


def test_garbage_instead_of_reply_code(run, scripted_peer) -> None:
    peer = scripted_peer([Send(b"220 ok\r\n"), Expect(b"EHLO"), Send(b"HTTP/1.1 400 Bad\r\n")])
    code, _, err, _ = run("-s", target(peer), *BASE, "--timeout", "3")
    assert code == 3
    assert "garbage instead of an SMTP reply during ehlo" in one_line(err)


def test_endless_multiline_reply(run, scripted_peer) -> None:
    peer = scripted_peer([Send(b"220 ok\r\n"), Expect(b"EHLO"), SendForever(b"250-more\r\n", 0.0)])
    code, _, err, took = run("-s", target(peer), *BASE, "--timeout", "3")
    assert code == 3
    assert "more than 1000 lines" in one_line(err)
    assert took < 6


def test_server_closes_mid_data(run, scripted_peer) -> None:
    peer = scripted_peer([
        Send(b"220 ok\r\n"), Expect(b"EHLO"), EHLO_OK, Expect(b"MAIL"), Send(b"250 ok\r\n"),
        Expect(b"RCPT"), Send(b"250 ok\r\n"), Expect(b"DATA"), Send(b"354 go\r\n"),
        Expect(b""), Close(),
    ])
    code, _, err, took = run("-s", target(peer), *BASE, "--timeout", "3")
    assert code == 3
    assert "closed the connection during data" in one_line(err)
    assert took < 6


def test_421_mid_session(run, scripted_peer) -> None:
    peer = scripted_peer([
        Send(b"220 ok\r\n"), Expect(b"EHLO"), EHLO_OK, Expect(b"MAIL"), Send(b"250 ok\r\n"),
        Expect(b"RCPT"), Send(b"421 4.3.2 Service shutting down, closing channel\r\n"), Close(),
    ])
    code, out, err, _ = run("-s", target(peer), *BASE, "--timeout", "3", "--json")
    assert code == 4
    doc = json.loads(out)
    ids = {f["id"] for f in doc["findings"]}
    assert "smtp.closed-by-server" in ids and "smtp.rcpt-rejected" in ids
    assert not any(e["line"] == "QUIT" for e in doc["facts"]["transcript"])


def test_421_greeting(run, scripted_peer) -> None:
    peer = scripted_peer([Send(b"421 4.7.0 Too busy, try later\r\n"), Close()])
    code, out, _, _ = run("-s", target(peer), *BASE, "--timeout", "3")
    assert code == 4
    assert "smtp.greeting-rejected" in out and "421 4.7.0" in out


def test_multiline_replies_are_fine(run, scripted_peer) -> None:
    peer = scripted_peer([
        Send(b"220-peer.example.test ESMTP\r\n220-second line\r\n220 third\r\n"),
        Expect(b"EHLO"),
        Send(b"250-peer.example.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 1000\r\n"),
        Expect(b"MAIL"), Expect(b"RCPT"),
        Send(b"250 ok\r\n250-2.1.5 first\r\n250 2.1.5 recipient ok\r\n"),
        Expect(b"DATA"), Send(b"354 go\r\n"), ExpectData(),
        Send(b"250-2.0.0 accepted\r\n250 2.0.0 queued as ABC123XYZ\r\n"),
        Expect(b"QUIT"), Send(b"221 bye\r\n"),
    ])
    code, out, err, _ = run("-s", target(peer), *BASE, "--timeout", "3", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["facts"]["banner"]["text"] == "peer.example.test ESMTP\nsecond line\nthird"
    assert doc["facts"]["queue_id"] == "ABC123XYZ"
    assert doc["facts"]["pipelined"] is True
    # MAIL and RCPT went out in one write, before any reply (RFC 2920).
    assert peer.errors == []


def test_reset_during_ehlo(run, scripted_peer) -> None:
    from tests.servers.scripted_peer import Reset

    peer = scripted_peer([Send(b"220 ok\r\n"), Expect(b"EHLO"), Reset()])
    code, _, err, _ = run("-s", target(peer), *BASE, "--timeout", "3")
    assert code == 3
    assert "during ehlo" in one_line(err)
