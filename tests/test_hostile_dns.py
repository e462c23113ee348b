"""Hostile DNS answers (tests/servers/hostile_dns.py) against `send` direct to MX, `probe DOMAIN`
and `check-domain`, all through --nameserver: each ends in bounded time; a failed lookup is
exit 3 with one ``smtpcli:`` line (send, probe) or a ``dns.lookup-failed`` error finding
(check-domain), never "absent"."""

from __future__ import annotations

import io
import json
import sys
import time
from typing import Any

import pytest

from smtpcli.cli import main as main_module
from smtpcli.cli.state import STATE
from tests.servers import hostile_dns as hostile_dns_module

hostile_dns = hostile_dns_module.hostile_dns  # the fixture, used by name

# The timeout a case waits out (a silent server; answers dnspython discards, so it waits on).
# Cases that end in 3 get a short one: for them any lookup timing out, even one slowed by a
# loaded machine, is the same failed lookup and exit 3. The others must see every answer, so
# they get a generous one (and wait nothing out): "huge" makes 150 lookups at once against the
# in-process server, and on a loaded machine one of them took over a second.
TIMEOUT = 3.0
SHORT_TIMEOUT = 0.3


def timeout_for(expected: int) -> float:
    return SHORT_TIMEOUT if expected == 3 else TIMEOUT


def wall_limit(timeout: float) -> float:
    """A hang check: a few lookups in a row may each use the timeout."""
    return 3 * timeout + 3

# name -> (send, probe, check-domain) exit codes.
LOOKUP_FAILED = (3, 3, 3)
CASES: dict[str, tuple[int, int, int]] = {
    "servfail": LOOKUP_FAILED,
    "refused": LOOKUP_FAILED,
    "timeout": LOOKUP_FAILED,
    "garbage": LOOKUP_FAILED,
    "formerr": LOOKUP_FAILED,
    "wrong-id": LOOKUP_FAILED,
    "wrong-question": LOOKUP_FAILED,
    "mx-host-servfail": LOOKUP_FAILED,
    "mx-cname-loop": LOOKUP_FAILED,
    "cname-loop": LOOKUP_FAILED,
    # An address where a host name belongs: check-domain names it (mx.ip-literal, a failed
    # check: 1) without asking; send and probe look "127.0.0.1." up as a name, which fails here.
    "mx-ip-literal": (3, 3, 1),
    # NXDOMAIN with an answer section contradicts itself: a failed lookup, not "does not exist".
    "nxdomain-with-answer": LOOKUP_FAILED,
    "null-mx": (5, 1, 1),
    "ttl0": (0, 1, 1),
    "truncate": (0, 1, 1),
    "huge": (0, 1, 1),
}


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str],
            monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str, float]:
    STATE.json = STATE.traceback = False
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    began = time.monotonic()
    with pytest.raises(SystemExit) as exc:
        main_module.main(argv)
    took = time.monotonic() - began
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err, took


def common(dns: Any, timeout: float = TIMEOUT) -> list[str]:
    return ["--nameserver", dns.nameserver, "--timeout", str(timeout), "--dns-retries", "0"]


@pytest.fixture
def mx_server(smtp_server):  # type: ignore[no-untyped-def]
    return smtp_server("plain")


@pytest.mark.parametrize("case", sorted(CASES))
def test_send_direct_to_mx(case: str, hostile_dns, mx_server, capsys, monkeypatch) -> None:
    expected = CASES[case][0]
    timeout = timeout_for(expected)
    code, out, err, took = run_cli(
        ["send", *common(hostile_dns, timeout), "--port", str(mx_server.port), "--tls", "none",
         "-f", "a@client.test", "-t", f"b@{case}.hostile.test"], capsys, monkeypatch)
    assert "Traceback" not in out + err
    assert took < wall_limit(timeout)
    assert code == expected, (code, err, out[-800:])
    lines = err.strip().splitlines()
    if expected == 3:
        assert len(lines) == 1 and lines[0].startswith("smtpcli: "), lines
        assert "does not exist" not in err and "no MX" not in err  # failed is never absent
    elif expected == 0:
        assert lines == [] and len(mx_server.messages) == 1
    if case in ("truncate", "huge"):  # the truncated UDP answer was retried over TCP
        assert any(q.transport == "tcp" and q.qname.startswith(case) and q.rdtype == "MX"
                   for q in hostile_dns.queries)
    if case in ("wrong-id", "wrong-question", "nxdomain-with-answer"):
        assert getattr(hostile_dns, "behaviour_hits", 0) > 0  # the hostile answer was given


@pytest.mark.parametrize("case", sorted(CASES))
def test_probe_domain(case: str, hostile_dns, mx_server, capsys, monkeypatch) -> None:
    timeout = timeout_for(CASES[case][1])
    code, out, err, took = run_cli(
        ["probe", f"{case}.hostile.test", *common(hostile_dns, timeout), "--port",
         str(mx_server.port), "--first-only", "--no-tls-versions", "--no-vrfy", "--json"],
        capsys, monkeypatch)
    assert "Traceback" not in out + err
    assert took < wall_limit(timeout)
    assert code == CASES[case][1], (code, err, out[-800:])
    doc = json.loads(out)
    errors = [f for f in doc["findings"] if f["status"] == "error"]
    if code == 3:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("smtpcli: "), lines
        assert errors
    else:
        assert err.strip() == "" and not errors, (err, errors)


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_domain(case: str, hostile_dns, capsys, monkeypatch) -> None:
    timeout = timeout_for(CASES[case][2])
    code, out, err, took = run_cli(
        ["check-domain", f"{case}.hostile.test", *common(hostile_dns, timeout), "--no-dnsbl",
         "--json"], capsys, monkeypatch)
    assert "Traceback" not in out + err
    assert took < wall_limit(timeout)
    assert code == CASES[case][2], (code, err, out[-800:])
    doc = json.loads(out)
    ids = {f["id"]: f["status"] for f in doc["findings"]}
    if code == 3:
        assert any(s == "error" for s in ids.values()), ids
        assert "mx.missing" not in ids  # a failed lookup is never "no MX"
    else:
        assert "dns.lookup-failed" not in ids, ids
