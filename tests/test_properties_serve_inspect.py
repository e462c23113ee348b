"""Property tests (hypothesis) for serve's fault specs and --listen, and inspect's Received,
Authentication-Results and date parsers (structured inputs; test_inspect_malformed.py already
throws plain random text at the latter)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from smtpcli.errors import UsageError
from smtpcli.inspection.authresults import parse_auth_results
from smtpcli.inspection.parse import parse_date
from smtpcli.inspection.received import parse_received
from smtpcli.server.config import parse_listen
from smtpcli.server.faults import (
    STAGES,
    DelayRule,
    DropRule,
    ReplyRule,
    parse_delay,
    parse_drop,
    parse_reply,
)

FAST = settings(deadline=None)
# Header generators are slower per example (regex-drawn names): fewer examples.
HEADERS = settings(deadline=None)

# --- serve: --reply / --delay / --drop ---------------------------------------------------------

stage = st.sampled_from([*STAGES, "message", "RCPT", " mail "])
condition = st.one_of(
    st.integers(0, 100).map(str), st.integers(0, 100).map(lambda n: f"{n}%"),
    st.tuples(st.sampled_from(["from", "to", "helo", "user", "peer"]),
              st.from_regex(r"[a-z*?@.]{1,10}", fullmatch=True)).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.tuples(st.sampled_from(["nth", "first"]), st.integers(1, 99)).map(
        lambda kv: f"{kv[0]}={kv[1]}"),
)
spec_noise = st.lists(st.one_of(
    stage, condition, st.sampled_from([":", " ", "550", "250", "ms", "5.7.1", "²", "\n", "%"]),
    st.text(max_size=6)), max_size=8).map("".join)


def _check(rule: ReplyRule | DelayRule | DropRule) -> None:
    if isinstance(rule, ReplyRule):
        assert 200 <= rule.code <= 599 and "\n" not in rule.line and "\r" not in rule.line
    if isinstance(rule, DelayRule):
        assert rule.ms >= 0
    assert rule.stage in STAGES
    when = rule.when
    assert when.pct is None or 0 <= when.pct <= 100
    assert when.count is None or when.count >= 1
    when.describe()


@FAST
@given(st.one_of(st.text(max_size=40), spec_noise))
@example("rcpt:5²0 no")
@example("rcpt:550 x:nth=²")
@example("rcpt:²")
@example("rcpt:nth=²")
@example("rcpt:550 x\u2028y")
def test_any_fault_spec_is_a_rule_or_usage_error(spec: str) -> None:
    for parse in (parse_reply, parse_delay, parse_drop):
        try:
            rule = parse(spec)
        except UsageError:
            continue
        _check(rule)


@FAST
@given(st.sampled_from([s for s in STAGES if s != "connect"]), st.integers(400, 599),
       st.one_of(st.none(), condition))
def test_reply_rule_round_trip(where: str, code: int, cond: str | None) -> None:
    rule = parse_reply(f"{where}:{code} 5.0.0 nope" + (f":{cond}" if cond else ""))
    assert (rule.stage, rule.code, rule.text) == (where, code, "5.0.0 nope")
    assert (rule.when.describe() is None) == (cond is None)


@FAST
@given(stage, st.integers(0, 10**6), st.booleans(), st.one_of(st.none(), condition))
def test_delay_and_drop_round_trip(where: str, ms: int, suffix: bool, cond: str | None) -> None:
    tail = f":{cond}" if cond else ""
    delay = parse_delay(f"{where}:{ms}{'ms' if suffix else ''}{tail}")
    want = where.strip().lower().replace("message", "dot")
    assert (delay.stage, delay.ms) == (want, ms)
    drop = parse_drop(f"{where}{tail}")
    assert isinstance(drop, DropRule) and drop.stage == want
    assert (drop.when.describe() is None) == (cond is None)


@FAST
@given(st.one_of(st.text(max_size=30), st.lists(st.sampled_from(
    ["127.0.0.1", "[::1]", ":", "2525", "²", "[", "]", "0", "65536", "x"]), max_size=4).map("".join)))
@example("127.0.0.1:²")
@example("²")
def test_any_listen_text_is_host_port_or_usage_error(text: str) -> None:
    try:
        host, port = parse_listen(text)
    except UsageError:
        return
    assert host and 0 <= port < 65536


@FAST
@given(st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(lambda a: f"[{a}]")),
       st.integers(0, 65535))
def test_listen_round_trip(host: str, port: int) -> None:
    assert parse_listen(f"{host}:{port}") == (host.strip("[]"), port)


# --- inspect: Received, Authentication-Results, dates ----------------------------------------

name = st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,8}){1,3}", fullmatch=True)
when = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)),
                                               timezone(timedelta(hours=5, minutes=30))]))


@HEADERS
@given(name, name, st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), name,
       st.sampled_from(["SMTP", "ESMTP", "ESMTPS", "ESMTPSA", "LMTP"]),
       st.from_regex(r"[A-Za-z0-9]{4,12}", fullmatch=True), name, when)
def test_generated_received_fields_parse_to_their_parts(
    helo: str, rdns: str, ip: object, by: str, proto: str, qid: str, rcpt: str, at: datetime,
) -> None:
    literal = f"IPv6:{ip}" if ":" in str(ip) else str(ip)
    value = (f"from {helo} ({rdns} [{literal}])\r\n\tby {by} with {proto} id {qid}\r\n\t"
             f"for <user@{rcpt}>; {format_datetime(at.replace(microsecond=0))}")
    hop = parse_received(value)
    assert (hop.from_host, hop.from_rdns, hop.from_ip) == (helo, rdns, str(ip))
    assert (hop.by_host, hop.with_proto, hop.id, hop.for_addr) == (by, proto, qid, f"user@{rcpt}")
    assert hop.time == at.replace(microsecond=0)
    assert hop.tls == proto.startswith("ESMTPS")
    json.dumps(hop.to_dict())


@FAST
@given(when)
def test_dates_round_trip(at: datetime) -> None:
    at = at.replace(microsecond=0)
    assert parse_date(format_datetime(at)) == at


@FAST
@given(st.one_of(st.text(max_size=60), st.lists(st.sampled_from(
    ["Mon,", "32", "Feb", "99999", "25:61:61", "+9999", "-0000", "GMT", "2024", " "]),
    max_size=7).map(" ".join)))
def test_any_date_is_a_datetime_or_none(text: str) -> None:
    parsed = parse_date(text)
    assert parsed is None or parsed.tzinfo is not None


method = st.sampled_from(["spf", "dkim", "dmarc", "arc", "auth", "iprev", "x-custom"])
result = st.sampled_from(["pass", "fail", "softfail", "neutral", "none", "permerror",
                          "temperror", "policy"])
prop = st.tuples(st.sampled_from(["smtp.mailfrom", "header.d", "header.i", "header.from",
                                  "policy.iprev"]),
                 st.one_of(name, name.map(lambda n: f'"{n}; x"'))).map(lambda kv: f"{kv[0]}={kv[1]}")


@HEADERS
@given(name, st.lists(st.tuples(method, result, st.lists(prop, max_size=3), st.booleans()),
                      max_size=5), st.one_of(st.none(), st.integers(1, 50)))
def test_generated_auth_results_parse_to_their_parts(
    authserv: str, entries: list[tuple[str, str, list[str], bool]], instance: int | None,
) -> None:
    parts = [authserv]
    for m, r, props, comment in entries:
        parts.append(f"{m}={r}" + (" (a comment; with a semicolon)" if comment else "")
                     + "".join(" " + p for p in props))
    value = ";\r\n\t".join(parts)
    header = "Authentication-Results"
    if instance is not None:
        value, header = f"i={instance}; " + value, "ARC-Authentication-Results"
    parsed = parse_auth_results(value, header)
    assert parsed.authserv_id == authserv and parsed.instance == instance
    assert [(r.method, r.result) for r in parsed.results] == [(m, r) for m, r, _, _ in entries]
    for got, (_, _, props, _) in zip(parsed.results, entries, strict=True):
        want = dict(p.split("=", 1) for p in props)
        assert got.props == {k: v.strip('"') for k, v in want.items()}
    json.dumps(parsed.to_dict())


@FAST
@given(st.lists(st.one_of(st.sampled_from(["i=", "²", "dkim=pass", ";", "(", ")", '"', "a=b"]),
                          st.text(max_size=8)), max_size=10).map("".join))
@example("i=²; x; dkim=pass")
def test_any_arc_auth_results_text(text: str) -> None:
    parsed = parse_auth_results(text, "ARC-Authentication-Results")
    assert parsed.instance is None or isinstance(parsed.instance, int)
    json.dumps(parsed.to_dict())
