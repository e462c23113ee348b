"""`probe --checks`: the security probes wired into the probe command, per address."""

from __future__ import annotations

import json

import pytest

from smtpcli.cli.main import main
from smtpcli.server.config import ServeConfig
from smtpcli.server.runner import run_in_thread

PTR_ZONE = {"127.in-addr.arpa.": "1.0.0 IN PTR localhost.test.\n",
            "localhost.test.": "@ IN A 127.0.0.1\n"}


@pytest.fixture
def open_serve():
    """serve as it is by default: it relays anything and offers AUTH before TLS on request."""
    server = run_in_thread(ServeConfig(port=0, auth_accept_any=True, auth_plaintext=True,
                                       grace=0.5), lambda event: None)
    yield server
    server.stop()


def _probe(capsys, *args: str) -> tuple[int, dict]:
    with pytest.raises(SystemExit) as exc:
        main(["probe", *args, "--json", "--no-tls-versions", "--timeout", "3"])
    return int(exc.value.code or 0), json.loads(capsys.readouterr().out)


def test_checks_run_per_address_and_fail_the_probe(open_serve, dns_server, capsys) -> None:
    dns = dns_server(zones=PTR_ZONE)
    code, doc = _probe(capsys, f"127.0.0.1:{open_serve.port}", "--nameserver", dns.nameserver,
                       "--checks", "relay,auth-plain,starttls-injection")
    by_id = {f["id"]: f for f in doc["findings"]}
    assert by_id["security.open-relay"]["status"] == "fail"
    assert by_id["security.auth-before-tls"]["status"] in ("fail", "warn")
    assert by_id["security.starttls-injection"]["status"] == "ok"
    assert by_id["security.open-relay"]["subject"] == f"127.0.0.1:{open_serve.port}"
    assert doc["facts"]["security_checks"] == "relay,auth-plain,starttls-injection"
    assert code == 1 and doc["status"] == "fail"


def test_without_checks_no_security_probe_runs(open_serve, dns_server, capsys) -> None:
    dns = dns_server(zones=PTR_ZONE)
    _, doc = _probe(capsys, f"127.0.0.1:{open_serve.port}", "--nameserver", dns.nameserver)
    assert not [f for f in doc["findings"] if f["id"].startswith("security.")]


def test_unknown_check_is_a_usage_error_before_any_traffic(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["probe", "127.0.0.1:9", "--checks", "relay,nosuch"])
    assert exc.value.code == 2
    assert "unknown check nosuch" in capsys.readouterr().err


def test_summary_counts_the_security_findings(open_serve, dns_server, capsys) -> None:
    dns = dns_server(zones=PTR_ZONE)
    _, plain = _probe(capsys, f"127.0.0.1:{open_serve.port}", "--nameserver", dns.nameserver)
    _, checked = _probe(capsys, f"127.0.0.1:{open_serve.port}", "--nameserver", dns.nameserver,
                        "--checks", "relay")
    fails = sum(f["status"] == "fail" for f in checked["findings"])
    assert fails == sum(f["status"] == "fail" for f in plain["findings"]) + 1
    assert checked["summary"] != plain["summary"]
    assert f"{fails} failure" in checked["summary"]


def test_unreachable_address_gets_an_error_per_check_saying_why(dns_server, capsys) -> None:
    from smtpcli.server.runner import free_port

    dns = dns_server(zones=PTR_ZONE)
    port = free_port()  # nothing listens there
    code, doc = _probe(capsys, f"127.0.0.1:{port}", "--nameserver", dns.nameserver,
                       "--checks", "relay,enum")
    found = {f["id"]: f for f in doc["findings"]}
    for fid, name in (("security.open-relay", "relay"), ("security.vrfy-enum", "enum")):
        assert found[fid]["status"] == "error"
        assert found[fid]["summary"].startswith(f"the {name} probe could not run: ")
        assert "connect" in found[fid]["summary"]
    assert code == 3


def test_user_and_domain_need_checks(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["probe", "127.0.0.1:9", "--domain", "example.test"])
    assert exc.value.code == 2
    assert "--checks" in capsys.readouterr().err
