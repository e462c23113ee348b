"""Property tests (hypothesis) for the input parsers added for issue 14: address literals in
targets, listen and nameserver addresses; domain names as users type them; durations."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from smtpcli.checks.domainname import NotADomainError, normalize_domain
from smtpcli.dnsq.resolver import parse_nameserver
from smtpcli.durations import human_duration
from smtpcli.errors import UsageError
from smtpcli.hostport import split_host_port
from smtpcli.server.config import parse_listen
from smtpcli.smtp.target import parse_target

FAST = settings(deadline=None)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
ports = st.integers(1, 65535)
label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
hostname = st.lists(label, min_size=1, max_size=4).map(".".join)


@FAST
@given(st.one_of(ipv4, ipv6), ports, st.booleans())
def test_bracketed_literals_round_trip_everywhere(ip: str, port: int, tagged: bool) -> None:
    inner = f"IPv6:{ip}" if tagged and ":" in ip else ip
    target = parse_target(f"[{inner}]:{port}")
    assert (target.host, target.port) == (ip, port)
    assert parse_listen(f"[{inner}]:{port}") == (ip, port)
    ns = parse_nameserver(f"[{inner}]:{port}")
    assert (ns.host, ns.port) == (ip, port)
    assert parse_target(f"[{inner}]").host == ip


@FAST
@given(ipv4, ports)
def test_ipv6_tag_on_an_ipv4_address_is_refused(ip: str, port: int) -> None:
    with pytest.raises(UsageError):
        parse_target(f"[IPv6:{ip}]:{port}")


@FAST
@given(st.text(max_size=40))
@example("[")
@example("[IPv6:]")
def test_split_never_fails_but_with_a_usage_error(text: str) -> None:
    try:
        host, port = split_host_port(text, "target")
    except UsageError:
        return
    assert "[" not in host or not text.strip().startswith("[")
    assert port is None or isinstance(port, str)


@FAST
@given(st.text(max_size=60))
@example("https://EXAMPLE.test/x")
@example("a@b@c.test")
@example("bücher.example")
@example("xn--.test")
def test_a_domain_or_a_reason(text: str) -> None:
    try:
        got = normalize_domain(text)
    except NotADomainError as exc:
        assert str(exc)
        return
    name = got.name
    assert name.isascii() and name == name.lower() and 0 < len(name) <= 253
    assert all(0 < len(lb) <= 63 for lb in name.split("."))
    again = normalize_domain(name)
    assert again.name == name and again.note is None  # a normalised name stays as it is


@FAST
@given(hostname.filter(lambda n: not re.fullmatch(r"[0-9.]+", n)))  # 1.2.3.4 is an address
def test_plain_host_names_pass_unchanged(name: str) -> None:
    got = normalize_domain(name)
    assert got.name == name and got.note is None


@FAST
@given(st.integers(-10**10, 10**10))
def test_durations_read_back_within_their_smaller_unit(seconds: int) -> None:
    text = human_duration(seconds)
    units = {"y": 365 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
    parts = re.fullmatch(r"(\d+)([ydhms])(?: (\d+)([dhms]))?", text)
    assert parts is not None, text
    value = int(parts[1]) * units[parts[2]] + (int(parts[3]) * units[parts[4]] if parts[3] else 0)
    smallest = units[parts[4]] if parts[3] else 1
    assert value <= abs(seconds) < value + smallest
