"""check-domain input and per-domain facts (issue 14): what users type is normalised with a note
(a URL's host, an address's domain, IDN to A-labels) or refused line by line; --record without a
domain invents no name; the per-domain DNS question count is the domain's own; offline, DNSSEC
is unknown (info)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from smtpcli.checks.dmarc import parse_dmarc
from smtpcli.cli.main import main

ZONES = Path(__file__).parent / "zones"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(["check-domain", *args])
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def ns(dns: Any) -> list[str]:
    return ["--nameserver", dns.nameserver, "--timeout", "2", "--dns-retries", "0"]


@pytest.mark.parametrize("given,note", [
    ("https://cd-clean.test/path?q=1", "host name of the URL"),
    ("postmaster@cd-clean.test", "domain of the address"),
    ("CD-Clean.Test.", None),
])
def test_clear_inputs_are_normalised_with_a_note(capsys, dns_server, given: str,  # type: ignore[no-untyped-def]
                                                 note: str | None) -> None:
    dns = dns_server(zone_files=["cd-clean.test.zone", "cd-ext.test.zone"])
    code, out, err = run(capsys, given, "--only", "dmarc", "--json", *ns(dns))
    doc = json.loads(out)
    assert doc["target"] == "cd-clean.test" and "domain.nxdomain" not in out
    assert code == 0, err
    if note:
        assert f"note: '{given}' -> cd-clean.test (the {note})" in err
    assert all("cd-clean.test" in q.qname for q in dns.queries)


def test_idn_goes_to_dns_as_a_labels(capsys, dns_server) -> None:  # type: ignore[no-untyped-def]
    dns = dns_server(zone_files=["cd-clean.test.zone", "cd-ext.test.zone"])
    _, out, err = run(capsys, "bücher.cd-clean.test", "--only", "dmarc", "--json", *ns(dns))
    assert json.loads(out)["target"] == "xn--bcher-kva.cd-clean.test"
    assert "A-labels" in err
    assert any(q.qname.startswith("_dmarc.xn--bcher-kva") for q in dns.queries)


@pytest.mark.parametrize("given", ["two.test names.test", "192.0.2.1", "-bad-.test", "a..b.test"])
def test_a_single_non_domain_is_a_usage_error_without_dns(capsys, dns_server, given: str) -> None:  # type: ignore[no-untyped-def]
    dns = dns_server(zone_files=["cd-clean.test.zone", "cd-ext.test.zone"])
    code, _, err = run(capsys, given, *ns(dns))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert dns.queries == []


def test_batch_refuses_bad_lines_and_goes_on(dns_server) -> None:  # type: ignore[no-untyped-def]
    dns = dns_server(zone_files=["cd-clean.test.zone", "cd-ext.test.zone"])
    lines = "cd-clean.test\ntwo.test names.test\nhttps://cd-clean.test/\n192.0.2.1\n"
    done = subprocess.run([sys.executable, "-m", "smtpcli", "check-domain", "-", "--only", "dmarc",
                           "--json", *ns(dns)], input=lines, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "NO_COLOR": "1"})
    docs = [json.loads(line) for line in done.stdout.splitlines()]
    checked = [d for d in docs if d["status"] != "error"]
    refused = [d for d in docs if d.get("error", {}).get("kind") == "usage"]
    assert [d["target"] for d in checked] == ["cd-clean.test"]  # the URL is the same domain
    assert len(refused) == 2
    assert done.stderr.count("smtpcli: skipped:") == 2 and "Traceback" not in done.stderr
    assert done.returncode == 2


def test_batch_checks_each_name_once_and_says_each_thing_once(dns_server) -> None:  # type: ignore[no-untyped-def]
    dns = dns_server(zone_files=["cd-clean.test.zone", "cd-ext.test.zone", "cd-dmarc.test.zone"])
    lines = ("cd-clean.test\nCD-Clean.Test.\nhttps://none.cd-dmarc.test/\nbad..name\n# comment\n"
             "\nhttps://none.cd-dmarc.test/\nnone.cd-dmarc.test\nbad..name\ncd-clean.test\n")
    done = subprocess.run([sys.executable, "-m", "smtpcli", "check-domain", "-", "cd-clean.test.",
                           "--only", "dmarc", "--json", *ns(dns)], input=lines,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "NO_COLOR": "1"})
    docs = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(d["target"] for d in docs if "target" in d and d["target"]) == [
        "cd-clean.test", "none.cd-dmarc.test"]
    assert len([d for d in docs if d.get("error", {}).get("kind") == "usage"]) == 1
    assert done.stderr.count("smtpcli: skipped:") == 1
    assert done.stderr.count("smtpcli: note: 'https://none.cd-dmarc.test/'") == 1
    assert done.returncode == 2, done.stderr


def test_the_same_bad_name_twice_is_one_usage_error(capsys, dns_server) -> None:  # type: ignore[no-untyped-def]
    dns = dns_server(zone_files=["cd-clean.test.zone"])
    code, _, err = run(capsys, "a..b.test", "A..B.test.", *ns(dns))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert dns.queries == []


def test_a_missing_list_file_is_refused_before_any_name(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(capsys, "https://cd-clean.test/", "--from-file",
                         str(tmp_path / "absent.txt"), "--nameserver", "127.0.0.1:9")
    assert code == 2 and out == "", err
    assert err.strip().splitlines() == [f"smtpcli: cannot read {tmp_path / 'absent.txt'}: "
                                        "No such file or directory"]


def test_record_without_domain_invents_no_name(capsys, dns_server) -> None:  # type: ignore[no-untyped-def]
    dns = dns_server(zone_files=["cd-clean.test.zone", "cd-ext.test.zone"])
    code, out, _ = run(capsys, "--record", "v=DMARC1; p=reject; rua=mailto:d@other.test",
                       "--json", *ns(dns))
    assert "record.invalid" not in out and "rua-unauthorized" not in out
    doc = json.loads(out)
    assert doc["target"] is None and code == 0
    assert dns.queries == []
    _, text, _ = run(capsys, "--record", "v=spf1 mx ptr -all", *ns(dns))
    assert "record.invalid" not in text and "spf.ptr" in text


def test_dmarc_fixes_are_valid_records(capsys) -> None:  # type: ignore[no-untyped-def]
    _, out, _ = run(capsys, "--record", "v=DMARC1; p=none; pct=150; adkim=x", "--json")
    fixes = [f["fix"] for f in json.loads(out)["findings"] if f.get("fix")]
    assert fixes
    for fix in fixes:
        assert parse_dmarc(fix)[1] == [], fix


def test_per_domain_question_count_is_the_domains_own(capsys, dns_server) -> None:  # type: ignore[no-untyped-def]
    dns = dns_server(zone_files=["cd-clean.test.zone", "cd-dmarc.test.zone"])
    alone = {}
    for name in ("cd-clean.test", "cd-dmarc.test"):
        _, out, _ = run(capsys, name, "--only", "dmarc", "--only", "spf", "--json", *ns(dns))
        alone[name] = json.loads(out)["facts"]["dns_questions"]
    _, out, _ = run(capsys, "cd-clean.test", "cd-dmarc.test", "--only", "dmarc", "--only", "spf",
                    "--json", *ns(dns))
    both = {d["target"]: d["facts"]["dns_questions"] for d in map(json.loads, out.splitlines())}
    assert both == alone


def test_offline_zone_file_dnssec_is_unknown_not_unsigned(capsys) -> None:  # type: ignore[no-untyped-def]
    _, out, _ = run(capsys, "--zone-file", str(ZONES / "cd-clean.test.zone"), "--offline",
                    "--only", "dnssec", "--json")
    found = {f["id"]: f["status"] for f in json.loads(out)["findings"]}
    assert found == {"dnssec.unknown": "info"}
