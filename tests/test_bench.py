"""`smtpcli bench`: counts add up against serve and the aiosmtpd fixture; errors by reply code."""
# ruff: noqa: F811  (the capture_server fixture is imported, then requested by name)

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

from smtpcli.loadgen.generator import BenchConfig, LoadGenerator, percentile
from smtpcli.server.faults import parse_drop, parse_reply
from tests.servers.serve_bench_helpers import SMTPCLI, capture_server  # noqa: F401


def _run(**kw: object) -> object:
    kw.setdefault("host", "127.0.0.1")
    kw.setdefault("timeout", 10.0)
    return asyncio.run(LoadGenerator(BenchConfig(**kw)).run())  # type: ignore[arg-type]


def _adds_up(r: object) -> None:
    assert r.attempted == r.accepted + r.rejected + r.failed  # type: ignore[attr-defined]


def test_bench_against_serve_counts_add_up(capture_server) -> None:
    srv = capture_server()
    r = _run(port=srv.port, tls="none", messages=60, concurrency=4, size=2000, recipients=3)
    _adds_up(r)
    assert (r.attempted, r.accepted) == (60, 60)
    assert r.rcpt_accepted == 180
    assert r.connections == 4  # connections are reused
    assert len(srv.messages) == 60
    assert all(abs(m.size - 2000) <= 2 for m in srv.messages)
    assert srv.messages[0].rcpt_tos == [f"sink+{i}@smtpcli.test" for i in (1, 2, 3)]
    lat = r.latency()
    assert lat["mail"]["count"] == 60 and lat["rcpt"]["count"] == 180
    assert lat["message"]["p50"] <= lat["message"]["p99"] <= lat["message"]["max"]


def test_bench_errors_counted_by_code(capture_server) -> None:
    srv = capture_server(replies=[
        parse_reply("dot:451 4.3.0 Try later:first=5"),
        parse_reply("rcpt:550 5.1.1 No such user:nth=20"),
    ])
    r = _run(port=srv.port, tls="none", messages=40, concurrency=3)
    _adds_up(r)
    assert r.rejected == 6 and r.accepted == 34 and r.failed == 0
    assert r.errors[("dot", 451)] == 5
    assert r.errors[("rcpt", 550)] == 1
    assert r.error_samples[("dot", 451)] == "451 4.3.0 Try later"
    assert len(srv.messages) == 34


def test_bench_drops_are_failures_and_reconnect(capture_server) -> None:
    srv = capture_server(drops=[parse_drop("dot:nth=3")])
    r = _run(port=srv.port, tls="none", messages=10, concurrency=1)
    _adds_up(r)
    assert (r.accepted, r.failed) == (9, 1)
    assert sum(n for (stage, kind), n in r.failures.items() if kind == "closed") == 1
    assert r.connections == 2
    assert len(srv.messages) == 9


def test_bench_pipelining_when_offered(capture_server) -> None:
    srv = capture_server(replies=[parse_reply("rcpt:550 5.1.1 No:to=sink+2@*")])
    r = _run(port=srv.port, tls="none", messages=20, concurrency=2, pipelining=True, recipients=2)
    _adds_up(r)
    assert r.pipelining_used and r.accepted == 20
    assert r.rcpt_rejected == 20 and r.errors[("rcpt", 550)] == 20
    hidden = capture_server(hide={"PIPELINING"})
    r2 = _run(port=hidden.port, tls="none", messages=5, concurrency=1, pipelining=True)
    assert not r2.pipelining_used and r2.accepted == 5


def test_bench_starttls_auth_against_fixture(smtp_server) -> None:
    server = smtp_server("starttls", users={"ann": "pw"})
    r = _run(host="localhost", port=server.port, tls="starttls", cafile=server.ca_path,
             messages=12, concurrency=3, user="ann", password="pw", mechanism="LOGIN")
    _adds_up(r)
    assert r.accepted == 12 and len(server.messages) == 12
    assert all(m.tls and m.auth_user == "ann" for m in server.messages)
    assert r.latency()["tls"]["count"] == 3 and r.tls["version"].startswith("TLS")


def test_bench_implicit_tls_against_fixture(smtp_server) -> None:
    server = smtp_server("implicit", users={"ann": "pw"})
    r = _run(host="localhost", port=server.port, tls="implicit", cafile=server.ca_path,
             messages=6, concurrency=2, user="ann", password="pw")
    assert r.accepted == 6 and len(server.messages) == 6


def test_bench_bad_password_stops_at_the_first_auth(smtp_server) -> None:
    server = smtp_server("starttls", users={"ann": "pw"})
    gen = LoadGenerator(BenchConfig(
        host="localhost", port=server.port, tls="starttls", cafile=server.ca_path, timeout=10.0,
        messages=200, concurrency=8, user="ann", password="nope"))
    r = asyncio.run(gen.run())
    _adds_up(r)
    # One session was set up alone first; its 535 stopped every worker.
    assert (r.attempted, r.rejected, r.connections) == (1, 1, 1)
    assert r.errors[("auth", 535)] == 1
    assert gen.halted is not None and (gen.halted.stage, gen.halted.code) == ("auth", 535)
    assert "nope" not in json.dumps(r.to_dict())


def test_bench_untrusted_certificate_stops_at_the_first_handshake(capture_server) -> None:
    srv = capture_server(tls_self_signed=True)
    gen = LoadGenerator(BenchConfig(host="127.0.0.1", port=srv.port, tls="starttls", timeout=10.0,
                                    messages=30, concurrency=4))
    r = asyncio.run(gen.run())
    _adds_up(r)
    assert (r.attempted, r.failed) == (1, 1) and list(r.failures) == [("tls", "tls")]
    assert gen.halted is not None and gen.halted.kind == "tls"
    assert "[SSL" not in gen.halted.text and "self-signed" in gen.halted.text
    ok = _run(port=srv.port, tls="starttls", insecure=True, messages=3, concurrency=1)
    assert ok.accepted == 3


def test_bench_rate_and_duration(capture_server) -> None:
    srv = capture_server()
    r = _run(port=srv.port, tls="none", messages=None, duration=0.6, rate=20, concurrency=2)
    _adds_up(r)
    # A 20/s cap over 0.6 s allows about 12 (+1 for the first slot); never hundreds.
    assert 5 <= r.attempted <= 14


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99
    assert percentile(values, 100) == 100 and percentile([3.0], 90) == 3.0


def test_cli_json_against_serve(capture_server) -> None:
    srv = capture_server(replies=[parse_reply("mail:452 4.3.1 Full:first=2")])
    out = subprocess.run(
        [*SMTPCLI, "bench", f"127.0.0.1:{srv.port}", "--tls", "none", "-n", "10", "-c", "2",
         "--json"], capture_output=True, text=True, timeout=60,
    )
    doc = json.loads(out.stdout)
    assert out.returncode == 1 and doc["exit_code"] == 1
    assert doc["facts"]["messages"] == {"attempted": 10, "accepted": 8, "rejected": 2, "failed": 0}
    assert doc["facts"]["errors"][0]["code"] == 452
    ids = {f["id"]: f["status"] for f in doc["findings"]}
    assert ids == {"bench.completed": "ok", "bench.rejected": "fail"}
    assert set(doc["facts"]["latency_ms"]) >= {"connect", "banner", "ehlo", "mail", "rcpt", "data"}


def test_cli_text_and_connection_refused(capture_server) -> None:
    srv = capture_server()
    out = subprocess.run([*SMTPCLI, "bench", f"127.0.0.1:{srv.port}", "-n", "5", "-c", "1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "5 accepted" in out.stdout and "p99" in out.stdout
    assert out.stderr == ""  # no progress bar when stderr is not a terminal
    port = srv.port
    srv.stop()
    refused = subprocess.run([*SMTPCLI, "bench", f"127.0.0.1:{port}", "-n", "3"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 3 and "cannot connect" in refused.stderr


@pytest.mark.parametrize("args", [["-n", "5", "-d", "1"], ["--recipients", "0"]])
def test_cli_usage_errors(args: list[str]) -> None:
    out = subprocess.run([*SMTPCLI, "bench", "127.0.0.1:1", *args],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2


def _bench_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SMTPCLI, "bench", *args], capture_output=True, text=True, timeout=60)


def test_cli_wrong_password_exits_5_after_one_auth(capture_server, tmp_path) -> None:
    srv = capture_server(auth_users={"ann": "pw"}, auth_plaintext=True)
    pw = tmp_path / "pw"
    pw.write_text("wrong\n")
    out = _bench_cli(f"127.0.0.1:{srv.port}", "--tls", "none", "-n", "1000", "-c", "10",
                     "-u", "ann", "--password-file", str(pw), "--json")
    assert out.returncode == 5, out.stderr
    assert [e["success"] for e in srv.of("auth")] == [False]  # one AUTH, not 1,000
    assert len(srv.of("connect")) == 1
    line = out.stderr.strip()
    assert line.count("\n") == 0 and "refused AUTH with 535" in line and "--user" in line
    assert json.loads(out.stdout)["exit_code"] == 5 and "wrong" not in out.stdout + out.stderr


def test_cli_permanent_mail_rejection_stops_the_run(capture_server) -> None:
    srv = capture_server(replies=[parse_reply("mail:550 5.7.1 Sender blocked")])
    out = _bench_cli(f"127.0.0.1:{srv.port}", "--tls", "none", "-n", "500", "-c", "4")
    assert out.returncode == 5
    assert "refused MAIL FROM with 550 5.7.1 Sender blocked" in out.stderr
    # At most one MAIL per connection was in flight when the first 550 arrived.
    assert len(srv.of("connect")) <= 4 and not srv.messages


def test_cli_tls_failure_worded_like_send(capture_server) -> None:
    srv = capture_server(tls_self_signed=True)
    target = f"127.0.0.1:{srv.port}"
    out = _bench_cli(target, "--tls", "starttls", "-n", "100", "-c", "5")
    assert len(srv.of("connect")) == 1
    send = subprocess.run([*SMTPCLI, "send", "-s", target, "--tls", "starttls",
                           "--from", "a@example.test", "--to", "b@example.test"],
                          capture_output=True, text=True, timeout=60)
    assert (out.returncode, send.returncode) == (3, 3)
    assert "[SSL" not in out.stderr and "_ssl.c" not in out.stderr
    said = send.stderr.strip().removeprefix("smtpcli: ")
    reason = said.split(" (", 1)[0]  # "certificate verification failed for HOST:PORT: why"
    assert reason.startswith("certificate verification failed for") and reason in out.stderr
    assert "--cafile" in out.stderr


def test_reply_parser_long_lines_across_reads() -> None:
    """Replies split over many reads, lines longer than the initial buffer; > 64 KiB fails."""
    from smtpcli.loadgen.generator import _Client

    loop = asyncio.new_event_loop()
    try:
        def feed(client: _Client, data: bytes, step: int) -> None:
            i = 0
            while i < len(data) and client._lost is None:
                view = client.get_buffer(-1)
                n = min(len(view), step, len(data) - i)
                view[:n] = data[i:i + n]
                client.buffer_updated(n)
                i += n

        client = _Client(loop, 5.0)
        got: list[tuple[int, bytes]] = []
        client.on_reply = lambda code, text: got.append((code, text))
        feed(client, b"250-" + b"x" * 10000 + b"\r\n250 ok\r\n220 " + b"y" * 3000 + b"\r\n", 1000)
        assert [(code, len(text)) for code, text in got] == [(250, 10014), (220, 3006)]
        assert got[0][1].endswith(b"250 ok\r\n")
        huge = _Client(loop, 5.0)
        feed(huge, b"x" * 70000, 4096)
        assert "longer than 64 KiB" in str(huge._lost)
    finally:
        loop.close()


def test_every_event_loop_sends_the_greeting_to_the_session(capture_server, smtp_server) -> None:
    """A greeting that arrives before the session's state machine takes over (uvloop delivers
    it at once) is not lost: it used to leave the session waiting for its timeout."""
    from smtpcli.loadgen.generator import run_loop

    srv = capture_server()
    for runner in (asyncio.run, run_loop):  # run_loop: uvloop when installed
        r = runner(LoadGenerator(BenchConfig(host="127.0.0.1", port=srv.port, tls="none",
                                             timeout=10.0, messages=30, concurrency=5,
                                             per_connection=1)).run())
        assert (r.accepted, r.failed, r.connections) == (30, 0, 30)
    server = smtp_server("starttls", users={"ann": "pw"})
    r = run_loop(LoadGenerator(BenchConfig(
        host="localhost", port=server.port, tls="starttls", cafile=server.ca_path, timeout=10.0,
        messages=8, concurrency=2, user="ann", password="pw", per_connection=2)).run())
    assert r.accepted == 8 and 4 <= r.connections <= 5  # 2 a connection, the last may get 1
    assert r.latency()["tls"]["count"] == r.connections and len(server.messages) == 8


def test_cli_workers_share_the_run_out(capture_server) -> None:
    srv = capture_server()
    out = _bench_cli(f"127.0.0.1:{srv.port}", "--tls", "none", "-n", "41", "-c", "4",
                     "--per-connection", "1", "--workers", "2", "--json")
    assert out.returncode == 0, out.stderr
    facts = json.loads(out.stdout)["facts"]
    assert facts["messages"] == {"attempted": 41, "accepted": 41, "rejected": 0, "failed": 0}
    assert facts["connections"]["opened"] == 41 and facts["workers"] == 2
    assert facts["latency_ms"]["message"]["count"] == 41
    # Each process numbers its messages in its own range: no Message-ID twice.
    ids = {m.content.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0] for m in srv.messages}
    assert len(srv.messages) == 41 and len(ids) == 41


def test_message_ids_are_unique_with_many_connections(capture_server) -> None:
    """Each message keeps the number it was reserved with, however the workers interleave."""
    srv = capture_server()
    r = _run(port=srv.port, tls="none", messages=60, concurrency=6, per_connection=1)
    assert r.accepted == 60
    ids = {m.content.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0] for m in srv.messages}
    assert len(ids) == 60
