"""`smtpcli explain` through the real CLI entry point: exit codes, JSON shape, --list, stdin."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.shell_completion import ShellComplete

from smtpcli.cli import main as main_module
from smtpcli.cli.state import STATE

DATA = Path(__file__).parent / "data" / "explain"
RECORD_KEYS = {"code", "class", "enhanced", "subject", "provider", "cause", "retry_helps",
               "summary", "fix", "references"}


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NO_COLOR", "1")

    def _run(*args: str, stdin: str | bytes | None = None) -> tuple[int, str, str]:
        STATE.json = STATE.traceback = False
        if stdin is not None:
            # A text stream with a byte buffer beneath, as the real stdin has.
            raw = stdin.encode() if isinstance(stdin, str) else stdin
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw), "utf-8"))
        with pytest.raises(SystemExit) as exc:
            main_module.main(list(args))
        out, err = capsys.readouterr()
        return int(exc.value.code or 0), out, err

    return _run


def test_text_output_and_exit_zero(run) -> None:
    code, out, err = run("explain", "550", "5.7.26")
    assert code == 0 and err == ""
    assert "550 5.7.26" in out and "permanent" in out and "sender-authentication" in out
    assert "explain.sender-authentication" in out and "fix:" in out
    assert "\x1b[" not in out  # NO_COLOR


def test_json_shape_single(run) -> None:
    code, out, _ = run("explain", "--json", "550 5.7.26 Gmail requires all senders to "
                       "authenticate with either SPF or DKIM. - gsmtp")
    doc = json.loads(out)
    assert code == 0 and doc["schema"] == 1 and doc["command"] == "explain"
    assert doc["status"] == "fail" and doc["exit_code"] == 0
    facts = doc["facts"]
    assert facts["input"] == "reply" and len(facts["records"]) == 1
    assert RECORD_KEYS <= set(facts["records"][0])
    assert {k: facts[k] for k in RECORD_KEYS} == {k: facts["records"][0][k] for k in RECORD_KEYS}
    assert facts["provider"] == "Gmail" and facts["class"] == "permanent"
    assert doc["findings"][0]["id"] == "explain.sender-authentication"


@pytest.mark.parametrize(("args", "expected"), [
    (["550 5.7.26"], 5), (["421 4.7.0 Try again later"], 4), (["250 2.0.0 Ok"], 0),
    (["354"], 0), (["#5.3.4"], 5), (["4.2.1"], 4),
])
def test_exit_status(run, args: list[str], expected: int) -> None:
    assert run("explain", *args)[0] == 0
    assert run("explain", "--exit-status", *args)[0] == expected


def test_status_per_class(run) -> None:
    statuses = {a: json.loads(run("explain", "--json", a)[1])["status"]
                for a in ("250", "354", "450", "550")}
    assert statuses == {"250": "ok", "354": "ok", "450": "warn", "550": "fail"}


def test_unknown_code_says_what_is_known(run) -> None:
    code, out, _ = run("explain", "--json", "599")
    facts = json.loads(out)["facts"]
    assert code == 0 and facts["class"] == "permanent" and facts["cause"] == "unknown"
    assert facts["notes"]
    facts = json.loads(run("explain", "--json", "4.9.99")[1])["facts"]
    assert facts["class"] == "transient" and facts["cause"] == "unknown"
    assert facts["subject"] is None and facts["retry_helps"] is True


def test_not_a_code_is_a_usage_error(run) -> None:
    code, out, err = run("explain", "hello", "world")
    assert code == 2 and out == "" and err.startswith("smtpcli: not an SMTP reply code")
    code, out, _ = run("explain", "--json", "hello")
    assert code == 2 and json.loads(out)["error"]["kind"] == "usage"
    assert run("explain")[0] == 2
    assert run("explain", "--class", "5")[0] == 2
    assert run("explain", "--list", "550")[0] == 2


def test_provider_meaning_noted_for_bare_reused_codes(run) -> None:
    facts = json.loads(run("explain", "--json", "5.7.9")[1])["facts"]
    assert facts["cause"] == "auth-failed"  # the registry meaning, without a provider's text
    assert any("Yahoo" in n for n in facts["notes"])
    facts = json.loads(run("explain", "--json", "451", "5.7.3")[1])["facts"]
    assert (facts["provider"], facts["cause"], facts["class"]) == ("Microsoft", "tls-required",
                                                                   "transient")


def test_dsn_file_records_and_worst_exit(run) -> None:
    path = str(DATA / "postfix-dsn-3rcpt.eml")
    code, out, _ = run("explain", "--json", "--exit-status", path)
    doc = json.loads(out)
    assert code == 5 and doc["facts"]["input"] == "dsn"
    assert "code" not in doc["facts"]  # several records: only the list
    assert [r["recipient"] for r in doc["facts"]["records"]] == [
        "nobody@example.com", "boss@example.net", "friend@example.edu"]
    assert [f["status"] for f in doc["findings"]] == ["fail", "fail", "warn"]
    assert all(RECORD_KEYS <= set(r) for r in doc["facts"]["records"])
    code, out, _ = run("explain", path)
    assert code == 0 and "friend@example.edu (delayed)" in out


def test_stdin(run) -> None:
    text = (DATA / "postfix-pasted.txt").read_text()
    code, out, _ = run("explain", "--json", "-", stdin=text)
    assert code == 0
    assert [r["cause"] for r in json.loads(out)["facts"]["records"]] == [
        "recipient-unknown", "greylisting"]
    assert run("explain", "-", stdin="no codes here")[0] == 2


def test_list_filters(run) -> None:
    rows = json.loads(run("explain", "--json", "--list")[1])["facts"]["codes"]
    codes = {r["code"] for r in rows}
    assert {"550", "354", "2.1.5", "4.7.26", "5.7.26", "5.7.708"} <= codes
    rows = json.loads(run("explain", "--json", "--list", "--class", "5", "--subject", "7")[1])
    codes = [r["code"] for r in rows["facts"]["codes"]]
    assert codes and all(c.startswith("5.7.") for c in codes)
    assert "5.7.26" in codes and "5.7.708" in codes and "550" not in codes
    rows = json.loads(run("explain", "--json", "--list", "--class", "4")[1])["facts"]["codes"]
    assert {r["class"] for r in rows} == {"transient"} and "421" in {r["code"] for r in rows}
    code, out, _ = run("explain", "--list", "--class", "3")
    assert code == 0 and "334" in out and "354" in out
    assert run("explain", "--list", "--subject", "9")[0] == 2


def test_shell_completion_of_codes() -> None:
    comp = ShellComplete(main_module.cli, {}, "smtpcli", "_SMTPCLI_COMPLETE")
    items = [c.value for c in comp.get_completions(["explain"], "5.7.2")]
    assert "5.7.26" in items and "5.7.2" in items and all(i.startswith("5.7.2") for i in items)
    assert "550" in [c.value for c in comp.get_completions(["explain"], "55")]


def test_console_script_reads_stdin_and_file() -> None:
    exe = Path(sys.executable).with_name("smtpcli")
    assert exe.exists(), "the console script is installed next to the interpreter"
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run([str(exe), "explain", "--exit-status", "-"], input="452 4.2.2 over quota",
                          capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == 4 and "mailbox-full" in proc.stdout
    proc = subprocess.run([str(exe), "explain", str(DATA / "gmail-dsn-2rcpt.eml")],
                          capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == 0 and "ghost@example.com" in proc.stdout


def test_file_arguments(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "550").write_text("452 4.2.2 over quota")
    assert json.loads(run("explain", "--json", "550")[1])["facts"]["code"] == 550
    code, _, err = run("explain", "missing-bounce.eml")
    assert code == 2 and "no such file: missing-bounce.eml" in err
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 4)
    assert run("explain", str(tmp_path / "binary.bin"))[0] == 2
    assert run("explain", str(tmp_path))[0] == 2  # a directory is not a reply


def test_reply_with_slash_is_text_not_a_file(run) -> None:
    code, out, err = run("explain", "--json", "550 5.7.1 Blocked - see https://example.com/x")
    doc = json.loads(out)
    assert code == 0 and err == ""
    assert doc["facts"]["code"] == 550 and doc["facts"]["enhanced"] == "5.7.1"
    assert doc["facts"]["cause"] == "ip-reputation"  # "Blocked - see <url>": a block list


def test_missing_path_without_code_is_no_such_file(run) -> None:
    code, _, err = run("explain", "/nonexistent/dir/bounce")
    assert code == 2 and "no such file: /nonexistent/dir/bounce" in err


def test_bounce_without_code_through_the_cli(run, tmp_path: Path) -> None:
    bounce = tmp_path / "delayed.eml"
    bounce.write_text("From: MAILER-DAEMON@mx.example.net\nTo: s@example.org\n"
                      "Subject: Delivery delayed\n\nDelivery to <d@example.org> has been "
                      "delayed; we will retry for 2 more days.\n")
    code, out, _ = run("explain", "--exit-status", str(bounce))
    assert code == 4 and "(no code)  transient" in out and "for d@example.org" in out
    doc = json.loads(run("explain", "--json", str(bounce))[1])
    assert doc["facts"]["code"] is None and doc["facts"]["enhanced"] is None
    assert doc["facts"]["cause"] == "server-unavailable"


def test_ordinary_message_file_is_not_a_bounce(run, tmp_path: Path) -> None:
    mail = tmp_path / "lunch.eml"
    mail.write_text("From: a@example.org\nTo: b@example.org\nSubject: lunch\n\n"
                    "See you at noon, <c@example.org>.\n")
    code, out, err = run("explain", str(mail))
    assert code == 2 and out == "" and "not an SMTP reply code, reply or bounce" in err
