"""`bench` timeouts, watched by one sweep per run (no timer per connection), and the reply
parser against a plain line-by-line reading of the same bytes."""
# ruff: noqa: F811  (the scripted_peer fixture is imported, then requested by name)

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from smtpcli.loadgen.generator import BenchConfig, BenchResult, LoadGenerator, _Client, run_loop
from tests.servers.scripted_peer import Expect, ExpectData, Send, Sleep, scripted_peer  # noqa: F401

GREETING_AND_EHLO = [Send(b"220 peer.test ESMTP\r\n"), Expect(b"EHLO"),
                     Send(b"250-peer.test\r\n250 8BITMIME\r\n")]


def _bench(port: int, runner: Callable[[Any], Any] = asyncio.run, **kw: Any) -> tuple[
        BenchResult, LoadGenerator]:
    kw.setdefault("timeout", 0.3)
    gen = LoadGenerator(BenchConfig(host="127.0.0.1", port=port, tls="none", **kw))
    return runner(gen.run()), gen


def _failures(r: BenchResult) -> dict[tuple[str, str], int]:
    return dict(r.failures)


@pytest.mark.parametrize("runner", [asyncio.run, run_loop], ids=["asyncio", "run_loop"])
def test_a_server_that_never_greets_times_out_every_session(scripted_peer, runner) -> None:
    peer = scripted_peer([Sleep(5)], linger=0.1)
    r, gen = _bench(peer.port, runner, messages=2, concurrency=1, per_connection=1)
    assert (r.attempted, r.accepted, r.failed) == (2, 0, 2)
    assert _failures(r) == {("banner", "timeout"): 2}
    assert r.failure_samples[("banner", "timeout")] == "no reply within the timeout"
    assert not gen._watched and not gen._connecting  # nothing left for the sweep


def test_a_reply_that_never_comes_mid_transaction_times_out(scripted_peer) -> None:
    peer = scripted_peer([*GREETING_AND_EHLO, Expect(b"MAIL"), Send(b"250 2.1.0 Ok\r\n"),
                          Expect(b"RCPT"), Sleep(5)], linger=0.1)
    r, _ = _bench(peer.port, messages=1, concurrency=1)
    assert (r.attempted, r.accepted, r.failed) == (1, 0, 1)
    assert _failures(r) == {("rcpt", "timeout"): 1}
    assert r.latency()["mail"]["count"] == 1 and "rcpt" not in r.latency()


def test_a_missing_221_is_closed_by_the_sweep_and_the_message_still_counts(scripted_peer) -> None:
    """The 221 to QUIT is awaited in the background while the worker goes on: the sweep closes
    the first session, whose 221 never comes, while the second (slow, answered) still runs."""
    def script(index: int) -> list[Any]:
        slow = [Sleep(0.2)] if index else []
        return [*slow, *GREETING_AND_EHLO, Expect(b"MAIL"), *slow, Send(b"250 2.1.0 Ok\r\n"),
                Expect(b"RCPT"), Send(b"250 2.1.5 Ok\r\n"), Expect(b"DATA"),
                Send(b"354 go on\r\n"), ExpectData(), Send(b"250 2.0.0 Ok\r\n"),
                Expect(b"QUIT"), Send(b"221 Bye\r\n") if index else Sleep(5)]

    peer = scripted_peer(script, linger=0.1)
    r, gen = _bench(peer.port, messages=2, concurrency=1, per_connection=1)
    assert (r.attempted, r.accepted, r.failed, r.connections) == (2, 2, 0, 2)
    assert not gen._quitting and gen._quit_done.is_set()  # the sweep closed the first one
    assert sum(line.startswith(b"QUIT") for line in peer.received) == 2


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose accept queue is full (listen backlog 0, never accepting): a further
    connect gets no SYN-ACK and hangs until its timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    yield port
    for s in fillers:
        s.close()
    listener.close()


@pytest.mark.parametrize("runner", [asyncio.run, run_loop], ids=["asyncio", "run_loop"])
def test_a_connect_that_hangs_times_out(unanswered_port, runner) -> None:
    r, gen = _bench(unanswered_port, runner, messages=2, concurrency=2)
    assert (r.attempted, r.accepted, r.failed, r.connect_failures) == (2, 0, 2, 2)
    assert _failures(r) == {("connect", "timeout"): 2}
    assert r.failure_samples[("connect", "timeout")] == "no answer within the timeout"
    assert not gen._connecting and not gen._connect_expired


def _reference(stream: bytes) -> list[tuple[int, bytes]]:
    """Replies as RFC 5321 4.2.1 reads them, line by line: "xyz-" continues, else ends."""
    out: list[tuple[int, bytes]] = []
    pending: list[bytes] = []
    for line in stream.splitlines(keepends=True):
        pending.append(line)
        if not (len(line) > 3 and line[3:4] == b"-"):
            head = line[:3]
            out.append((int(head) if head.isdigit() else 0, b"".join(pending)))
            pending = []
    return out


def test_reply_parser_matches_a_line_by_line_reading_at_every_split() -> None:
    """Both ways a loop reads: into the client's buffer (asyncio's loop) and as bytes
    (uvloop), in every read size."""
    stream = (b"220 hi\r\n250-a\r\n250-PIPELINING\r\n250 SIZE 100\r\n250 2.1.0 Ok\r\n"
              b"5\r\n\n25\r\nabc-x\r\n999 z\r\n354-one\r\n354 two\r\n221 Bye\r\n")
    expected = _reference(stream)
    assert len(expected) == 9 and expected[1][0] == 250 and expected[3] == (0, b"5\r\n")
    assert expected[6] == (999, b"abc-x\r\n999 z\r\n")
    loop = asyncio.new_event_loop()
    try:
        for buffered in (True, False):
            for step in range(1, len(stream) + 1):
                client = _Client(loop, 5.0)
                got: list[tuple[int, bytes]] = []
                client.on_reply = lambda code, text, got=got: got.append((code, text))
                for i in range(0, len(stream), step):
                    chunk = stream[i:i + step]
                    if buffered:
                        view = client.get_buffer(-1)
                        view[:len(chunk)] = chunk
                        client.buffer_updated(len(chunk))
                    else:
                        client.data_received(chunk)
                assert got == expected, (buffered, step)
                assert all(type(text) is bytes for _, text in got)
    finally:
        loop.close()


def test_a_reply_line_of_64_kib_read_as_bytes_ends_the_session() -> None:
    loop = asyncio.new_event_loop()
    try:
        client = _Client(loop, 5.0)
        client.data_received(b"250-" + b"x" * 10000 + b"\r\n")  # continues: kept, buffer grows
        assert client._lost is None and len(client._lines) == 1
        for _ in range(7):
            client.data_received(b"y" * 10000)
        assert "longer than 64 KiB" in str(client._lost)
    finally:
        loop.close()


@pytest.mark.parametrize("runner", [asyncio.run, run_loop], ids=["asyncio", "run_loop"])
def test_implicit_tls_sessions_read_replies_on_every_loop(smtp_server, runner) -> None:
    """Through TLS a loop may hand replies over either way (buffer or bytes): both work."""
    server = smtp_server("implicit", users={"ann": "pw"})
    gen = LoadGenerator(BenchConfig(host="localhost", port=server.port, tls="implicit",
                                    cafile=server.ca_path, timeout=10.0, messages=4,
                                    concurrency=2, per_connection=1, user="ann", password="pw"))
    r = runner(gen.run())
    assert (r.accepted, r.failed, r.connections) == (4, 0, 4) and len(server.messages) == 4
    assert all(m.tls and m.auth_user == "ann" for m in server.messages)
