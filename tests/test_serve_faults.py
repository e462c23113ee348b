"""Fault rule parsing (--reply/--delay/--drop) and every fault option against a live server."""
# ruff: noqa: F811  (the capture_server fixture is imported, then requested by name)

from __future__ import annotations

import random
import smtplib
import socket
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtpcli.errors import UsageError
from smtpcli.server.faults import (
    STAGES,
    FaultPlan,
    parse_delay,
    parse_drop,
    parse_reply,
)
from tests.servers.serve_bench_helpers import capture_server  # noqa: F401

MSG = b"Subject: t\r\n\r\nhello\r\n"


# -- parsing ---------------------------------------------------------------------------------
def test_reply_with_match_keeps_text_with_spaces() -> None:
    rule = parse_reply("rcpt:550 5.1.1 No such user:to=bad@*")
    assert (rule.stage, rule.code, rule.text) == ("rcpt", 550, "5.1.1 No such user")
    assert rule.when.key == "to" and rule.when.pattern == "bad@*"


def test_reply_text_with_colon_is_not_a_condition() -> None:
    rule = parse_reply("mail:554 5.7.1 Rejected: see https://example.test/why")
    assert rule.text == "5.7.1 Rejected: see https://example.test/why"
    assert rule.when.describe() is None


def test_reply_percentage_and_counters() -> None:
    assert parse_reply("dot:451:30%").when.pct == 30
    assert parse_reply("dot:451 4.3.0 later:25").when.pct == 25
    first = parse_reply("dot:451:first=2").when
    assert (first.key, first.count) == ("first", 2)
    assert parse_reply("rcpt:450").text == "4.0.0 Error injected by smtpcli serve"


@pytest.mark.parametrize("spec", [
    "rcpt:99 bad", "rcpt:650 x", "nowhere:550 x", "ehlo:250 fine", "connect:250 hi",
    "dot:451:nth=0", "dot:451:150",
])
def test_bad_reply_specs_are_usage_errors(spec: str) -> None:
    with pytest.raises(UsageError):
        parse_reply(spec)


def test_delay_and_drop_parsing() -> None:
    d = parse_delay("rcpt:1500:to=slow@*")
    assert (d.stage, d.ms, d.when.key) == ("rcpt", 1500, "to")
    assert parse_delay("data:200ms").ms == 200
    assert parse_drop("dot:50").when.pct == 50
    assert parse_drop("connect").when.describe() is None
    for bad in ("rcpt:fast", "rcpt"):
        with pytest.raises(UsageError):
            parse_delay(bad)
    with pytest.raises(UsageError):
        parse_drop("dot:sometimes")


@given(st.sampled_from(STAGES), st.integers(400, 599),
       st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
def test_reply_parse_round_trips(stage: str, code: int, text: str) -> None:
    text = " ".join(text.split())
    try:
        rule = parse_reply(f"{stage}:{code} {text}")
    except UsageError:
        return  # text that ends in something that looks like a bad condition
    assert rule.stage == stage and rule.code == code
    assert rule.line.startswith(f"{code} ")


def test_plan_counters_and_percentages() -> None:
    plan = FaultPlan([parse_reply("dot:451:first=2"), parse_reply("mail:550:0")], seed=1)
    got = [plan.decide("dot", {}).reply is not None for _ in range(4)]
    assert got == [True, True, False, False]
    assert all(plan.decide("mail", {}).reply is None for _ in range(50))
    plan = FaultPlan(drops=[parse_drop("rcpt:50")], seed=7)
    hits = sum(plan.decide("rcpt", {}).drop is not None for _ in range(400))
    rng = random.Random(7)
    assert hits == sum(rng.random() * 100 < 50 for _ in range(400))


# -- live faults -----------------------------------------------------------------------------
def test_reply_fault_by_recipient_match(capture_server) -> None:
    srv = capture_server(replies=[parse_reply("rcpt:550 5.1.1 No such user:to=bad@*")])
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        refused = s.sendmail("a@x.test", ["good@x.test", "bad@x.test"], MSG)
    assert refused == {"bad@x.test": (550, b"5.1.1 No such user")}
    assert [m.rcpt_tos for m in srv.messages] == [["good@x.test"]]
    faults = srv.of("fault")
    assert faults and faults[0]["stage"] == "rcpt" and faults[0]["reply"].startswith("550")


def test_reply_fault_at_dot_first_n_then_accepts(capture_server) -> None:
    srv = capture_server(replies=[parse_reply("dot:451 4.3.0 Try again:first=1")])
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        with pytest.raises(smtplib.SMTPDataError) as exc:
            s.sendmail("a@x.test", ["b@x.test"], MSG)
        assert exc.value.smtp_code == 451
        s.rset()
        s.sendmail("a@x.test", ["b@x.test"], MSG)
    assert len(srv.messages) == 1  # the rejected try was not stored


def test_connect_reply_554_then_only_quit(capture_server) -> None:
    srv = capture_server(replies=[parse_reply("connect:554 5.7.1 Go away")])
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        f = sock.makefile("rb")
        assert f.readline() == b"554 5.7.1 Go away\r\n"
        sock.sendall(b"EHLO x\r\n")
        assert f.readline().startswith(b"503 ")
        sock.sendall(b"QUIT\r\n")
        assert f.readline().startswith(b"221 ")


def test_custom_greeting(capture_server) -> None:
    srv = capture_server(replies=[parse_reply("connect:220 custom.test ESMTP hello")])
    with smtplib.SMTP(timeout=10) as s:
        code, text = s.connect("127.0.0.1", srv.port)
    assert (code, text) == (220, b"custom.test ESMTP hello")


def test_mail_reject_by_sender(capture_server) -> None:
    srv = capture_server(replies=[parse_reply("mail:553 5.7.1 Sender refused:from=*@spam.test")])
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        with pytest.raises(smtplib.SMTPSenderRefused) as exc:
            s.sendmail("x@spam.test", ["b@x.test"], MSG)
        assert exc.value.smtp_code == 553
        s.rset()
        s.sendmail("ok@x.test", ["b@x.test"], MSG)
    assert len(srv.messages) == 1


def test_ehlo_and_data_rejections(capture_server) -> None:
    srv = capture_server(replies=[parse_reply("data:554 5.5.0 No data today")])
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        with pytest.raises(smtplib.SMTPDataError) as exc:
            s.sendmail("a@x.test", ["b@x.test"], MSG)
    assert exc.value.smtp_code == 554
    srv2 = capture_server(replies=[parse_reply("ehlo:421 4.3.2 Busy")])
    with smtplib.SMTP("127.0.0.1", srv2.port, timeout=10) as s:
        code, _ = s.ehlo()
    assert code == 421


def test_delay_fault_slows_the_reply(capture_server) -> None:
    srv = capture_server(delays=[parse_delay("rcpt:400")])
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.ehlo()
        s.mail("a@x.test")
        t = time.monotonic()
        code, _ = s.rcpt("b@x.test")
        waited = time.monotonic() - t
    assert code == 250
    assert waited >= 0.35  # the fault's own delay, not a speed claim
    assert srv.of("fault")[0]["action"] == "delay"


@pytest.mark.parametrize("stage", ["connect", "ehlo", "rcpt", "dot"])
def test_drop_closes_the_connection(capture_server, stage: str) -> None:
    srv = capture_server(drops=[parse_drop(stage)])
    with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError)):
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("a@x.test", ["b@x.test"], MSG)
    assert srv.messages == []
    time.sleep(0.1)
    assert srv.of("fault")[0]["action"] == "drop"


def test_greylist_then_accept(capture_server) -> None:
    srv = capture_server(greylist=0.5)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as exc:
            s.sendmail("a@x.test", ["b@x.test"], MSG)
        assert exc.value.recipients["b@x.test"][0] == 451
        s.rset()
        # Another triplet is greylisted on its own.
        code, _ = (s.mail("a@x.test"), s.rcpt("c@x.test"))[1]
        assert code == 451
        s.rset()
        time.sleep(0.6)
        s.sendmail("a@x.test", ["b@x.test"], MSG)
    assert [m.rcpt_tos for m in srv.messages] == [["b@x.test"]]


def test_tarpit_dribbles_replies(capture_server) -> None:
    srv = capture_server(tarpit=True, tarpit_delay_ms=300)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        t = time.monotonic()
        first = sock.recv(1024)
        data = first
        while not data.endswith(b"\r\n"):
            data += sock.recv(1024)
        waited = time.monotonic() - t
    assert data.startswith(b"220 ")
    assert len(first) < len(data)  # the greeting arrived in pieces
    assert waited >= 0.2


def test_hidden_extensions(capture_server) -> None:
    srv = capture_server(hide={"PIPELINING", "8BITMIME", "SIZE"}, smtputf8=False)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.ehlo()
        assert not {"pipelining", "8bitmime", "size", "smtputf8"} & set(s.esmtp_features)
        code, _ = s.mail("a@x.test", ["BODY=8BITMIME"])
        assert code == 555
    plain = capture_server()
    with smtplib.SMTP("127.0.0.1", plain.port, timeout=10) as s:
        s.ehlo()
        assert {"pipelining", "8bitmime", "size", "smtputf8"} <= set(s.esmtp_features)


def test_max_size(capture_server) -> None:
    srv = capture_server(max_size=100)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        with pytest.raises(smtplib.SMTPSenderRefused) as exc:  # SIZE= in MAIL FROM
            s.sendmail("a@x.test", ["b@x.test"], MSG + b"x" * 200)
        assert exc.value.smtp_code == 552
    assert srv.messages == []
