"""``smtpcli demo``: end to end in a subprocess (text and --json), step selection,
--keep-serving, the judging of each step, the shown command lines, and the packaged zone file."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import smtplib
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from smtpcli.demo import zone_file_path
from smtpcli.demo.runner import (
    STEP_NAMES,
    Invocation,
    Step,
    StepResult,
    command_line,
    judge,
)
from tests.packaging import dist  # noqa: F401  (fixture)

PASSWORD = "Demo-Secret-7f3a9c"  # distinctive, so any leak is found


def demo(*args: str, password_file: Path | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    extra = ["--password-file", str(password_file)] if password_file else []
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("SMTPCLI_PASSWORD", None)
    return subprocess.run([sys.executable, "-m", "smtpcli", "demo", *args, *extra],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "demo-password"
    path.write_text(PASSWORD + "\n", encoding="utf-8")
    return path


def test_demo_runs_every_step_and_exits_0(password_file: Path) -> None:
    done = demo(password_file=password_file)
    out = done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    for number, name in enumerate(STEP_NAMES, 1):
        assert f"[{number}/{len(STEP_NAMES)}] {name}:" in out
        assert f"$ smtpcli {name} " in out
    assert len(re.findall(r"-> exit \d+, as expected", out)) == len(STEP_NAMES)
    assert "NOT as expected" not in out
    # What each step really did: delivered, redacted AUTH, explained, found the zone's problems.
    assert "smtp.delivered" in out
    assert "C: AUTH PLAIN [redacted]" in out
    assert "5.7.26" in out and "spf.all-neutral" in out and "dmarc.policy-none" in out
    assert "6 of 6 steps as expected; the server captured 2 messages" in out
    # The HTTP API answered one request (mailbox list) and the inbox URL is printed.
    assert re.search(r"web inbox and Mailpit-compatible API: http://127\.0\.0\.1:\d+/", out)
    assert "2 messages (2 in the mailbox, 2 unread)" in out
    # The password is only ever given as a file.
    assert "--password-file" in out
    assert PASSWORD not in out + done.stderr


def test_demo_json_is_one_document_with_every_step(password_file: Path) -> None:
    done = demo("--json", password_file=password_file)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)  # one document, nothing else on stdout
    assert doc["schema"] == 1 and doc["command"] == "demo" and doc["status"] == "ok"
    steps = doc["facts"]["steps"]
    assert [s["name"] for s in steps] == list(STEP_NAMES)
    for step in steps:
        assert isinstance(step["exit_code"], int)
        assert step["exit_code"] in step["expected_exit_codes"]
        assert step["ok"] is True and step["problems"] == []
        assert step["command"].startswith(f"smtpcli {step['name']} ")
        # A command group's report names the subcommand too ("mailbox list").
        assert step["report"]["command"].split()[0] == step["name"]
    by_name = {s["name"]: s for s in steps}
    ids = {f["id"] for f in by_name["check-domain"]["report"]["findings"]}
    assert {"spf.all-neutral", "dmarc.policy-none", "dkim.key-weak"} <= ids
    assert by_name["send"]["report"]["facts"]["auth"]["mechanism"] == "PLAIN"
    # Both messages (send and session) arrived at the server, over TLS, authenticated.
    messages = doc["facts"]["messages"]
    assert len(messages) == 2
    for msg in messages:
        assert msg["mail_from"] == "alice@demo.example"
        assert msg["rcpt_tos"] == ["bob@demo.example"]
        assert msg["auth"]["user"] == "demo"
        assert msg["tls"]
    assert doc["facts"]["server"]["tls"] == "starttls"
    assert by_name["mailbox"]["report"]["facts"]["messages_count"] == 2
    assert PASSWORD not in done.stdout + done.stderr


def test_demo_random_password_never_shown() -> None:
    done = demo("--json", "--step", "send", "--step", "session")
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert [s["name"] for s in doc["facts"]["steps"]] == ["send", "session"]
    assert len(doc["facts"]["messages"]) == 2
    transcript = doc["facts"]["steps"][1]["report"]["facts"]["transcript"]
    sent = [e["line"] for e in transcript if e["dir"] == "sent" and e["stage"] == "auth"]
    assert sent and all("[redacted]" in line for line in sent)


def test_step_selection_runs_only_those_steps_in_order() -> None:
    done = demo("--json", "--step", "check-domain", "--step", "explain")
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert [s["name"] for s in doc["facts"]["steps"]] == ["explain", "check-domain"]
    assert doc["facts"]["messages"] == []


def test_unknown_step_is_a_usage_error() -> None:
    done = demo("--step", "nope")
    assert done.returncode == 2
    assert "nope" in done.stderr


def _default_sigint() -> None:
    """In the child before exec: Ctrl-C's signal handled as in a terminal. pytest may itself
    run with SIGINT ignored (started in the background by a script, by nohup...): an ignored
    signal stays ignored across exec, and Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_keep_serving_accepts_mail_until_ctrl_c(password_file: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "smtpcli", "demo", "--step", "explain", "--keep-serving",
         "--password-file", str(password_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env=env, preexec_fn=_default_sigint)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        match = re.search(r"capture server on 127\.0\.0\.1:(\d+)", first)
        assert match, first
        port = int(match.group(1))
        deadline = time.monotonic() + 30
        # Wait for the "still serving" notice: the steps are done, the server is still up.
        while "press Ctrl-C to stop" not in proc.stderr.readline():
            assert time.monotonic() < deadline and proc.poll() is None
        with smtplib.SMTP("127.0.0.1", port, local_hostname="test.client", timeout=10) as smtp:
            smtp.starttls()
            smtp.login("demo", PASSWORD)
            smtp.sendmail("a@demo.example", ["b@demo.example"], b"Subject: kept\r\n\r\nhi\r\n")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out + err
    assert "the server captured 1 message" in err
    assert PASSWORD not in out + err


def _step(**kw: object) -> Step:
    base: dict[str, object] = {"name": "x", "title": "x", "argv": ["explain", "550"]}
    return Step(**{**base, **kw})  # type: ignore[arg-type]


class _Msg:
    def __init__(self, tls: object, auth: object) -> None:
        self.tls, self.auth = tls, auth


def test_judge_flags_every_unexpected_outcome() -> None:
    ok = StepResult(_step(expect_text=("5.7.26",)), "smtpcli x", Invocation(0, "550 5.7.26", "", 1))
    judge(ok, [], 0, "pw-secret")
    assert ok.ok

    bad = StepResult(_step(expect_text=("spf.all-neutral",), new_messages=1), "smtpcli x",
                     Invocation(5, "leaked pw-secret here", "", 1))
    judge(bad, [], 0, "pw-secret")
    text = " | ".join(bad.problems)
    assert "exit 5, expected 0" in text
    assert "'spf.all-neutral'" in text
    assert "password appeared" in text
    assert "received 0 message(s), expected 1" in text

    plain = StepResult(_step(new_messages=1), "smtpcli x", Invocation(0, "", "", 1))
    judge(plain, [_Msg(tls=None, auth=None)], 0, "pw-secret")
    assert any("without TLS" in p for p in plain.problems)
    assert any("without AUTH" in p for p in plain.problems)


@pytest.mark.parametrize("argv", [
    ["explain", "550 5.7.26 Unauthenticated email from x.example is not accepted due to "
                "domain's DMARC policy."],
    ["send", "--body", "it's $HOME `x` \"q\" \\ !"],
    ["send", "--subject", "smtpcli demo", "--to", "bob@demo.example"],
])
def test_shown_command_lines_parse_back_to_the_arguments(argv: list[str]) -> None:
    assert shlex.split(command_line(argv)) == ["smtpcli", *argv]


@pytest.mark.xdist_group("release-build")
def test_zone_file_is_package_data_in_the_wheel(dist) -> None:  # noqa: F811
    """The zone must ship in an installed wheel, not only in the source tree. The release
    tests' wheel (tests/packaging.py), built from the sdist: the zone must be in both."""
    assert zone_file_path().is_file()
    with zipfile.ZipFile(dist["wheel"]) as zf:
        names = set(zf.namelist())
    assert "smtpcli/demo/demo.example.zone" in names
    assert "smtpcli/demo/__init__.py" in names and "smtpcli/demo/runner.py" in names
