"""The root command: lazy loading, global options, profiles, env vars, error translation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from smtpcli.cli import main as main_module
from smtpcli.cli.options import dns_options, finish, json_option, strict_option
from smtpcli.cli.registry import COMMANDS
from smtpcli.cli.state import STATE
from smtpcli.dnsq.resolver import ResolverConfig
from smtpcli.errors import ConnectError
from smtpcli.results import Report, Status


@click.command()
@json_option
@dns_options
@strict_option
@click.option("--server", default="none")
@click.option("--timeout", type=float, default=1.0)
@click.option("--fail", type=click.Choice(["", "connect", "crash", "warn"]), default="")
def command(json_mode: bool, nameservers: tuple[str, ...], dns_retries: int, strict: bool,
            server: str, timeout: float, fail: str) -> int:
    """A command used only by these tests."""
    if fail == "connect":
        raise ConnectError("cannot connect to 127.0.0.1:9: connection refused")
    if fail == "crash":
        raise RuntimeError("boom")
    config = ResolverConfig.from_options(nameservers, timeout, dns_retries)
    report = Report("frame-test", server, summary="done",
                    facts={"server": server, "timeout": timeout,
                           "nameservers": [str(n) for n in config.nameservers]})
    if fail == "warn":
        report.add("x.warned", Status.WARN, "a warning")
    return finish(report, json_mode=json_mode, strict=strict)


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setitem(COMMANDS, "frame-test", (__name__, "Test command."))

    def _run(*args: str) -> tuple[int, str, str]:
        STATE.json = STATE.traceback = False
        with pytest.raises(SystemExit) as exc:
            main_module.main(list(args))
        out, err = capsys.readouterr()
        return int(exc.value.code or 0), out, err

    return _run


def test_json_document_and_options(run) -> None:
    code, out, _ = run("frame-test", "--json", "--server", "a:25", "--nameserver", "127.0.0.1:5353")
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == 1 and doc["facts"]["server"] == "a:25"
    assert doc["facts"]["nameservers"] == ["127.0.0.1:5353"]


def test_env_vars_fill_options(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTPCLI_FRAME_TEST_SERVER", "from-env:587")
    monkeypatch.setenv("SMTPCLI_NAMESERVER", "127.0.0.2:53 [::1]:5300")
    code, out, _ = run("frame-test", "--json")
    doc = json.loads(out)
    assert doc["facts"]["server"] == "from-env:587"
    assert doc["facts"]["nameservers"] == ["127.0.0.2:53", "[::1]:5300"]


def test_profiles(run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "smtpcli" / "config.toml"
    cfg.parent.mkdir()
    cfg.write_text(
        '[profiles.lab]\ntimeout = 7.5\n[profiles.lab.frame-test]\nserver = "lab:2525"\n'
        '[profiles.leaky]\npassword = "hunter2"\n'
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    code, out, _ = run("--profile", "lab", "frame-test", "--json")
    facts = json.loads(out)["facts"]
    assert (code, facts["server"], facts["timeout"]) == (0, "lab:2525", 7.5)
    # the command line wins over the profile
    code, out, _ = run("--profile", "lab", "frame-test", "--json", "--server", "cli:1")
    assert json.loads(out)["facts"]["server"] == "cli:1"
    code, out, err = run("--profile", "nosuch", "frame-test")
    assert code == 2 and "unknown profile 'nosuch'" in err
    code, out, err = run("--profile", "leaky", "frame-test")
    assert code == 2 and "secrets never live in profiles" in err and "hunter2" not in err


def test_errors_are_one_line_with_exit_code(run) -> None:
    code, out, err = run("frame-test", "--fail", "connect")
    assert code == 3 and out == ""
    assert err.strip().splitlines() == ["smtpcli: cannot connect to 127.0.0.1:9: connection refused"]
    code, out, err = run("frame-test", "--json", "--fail", "connect")
    doc = json.loads(out)
    assert doc["error"]["kind"] == "connect" and doc["exit_code"] == 3


def test_unexpected_error_is_one_line_unless_traceback(run) -> None:
    code, _, err = run("frame-test", "--fail", "crash")
    assert code == 3 and len(err.strip().splitlines()) == 1 and "RuntimeError: boom" in err
    with pytest.raises(RuntimeError):
        main_module.main(["--traceback", "frame-test", "--fail", "crash"])


def test_usage_errors_exit_2(run) -> None:
    code, _, err = run("frame-test", "--nameserver", "not-an-ip")
    assert code == 2 and "invalid nameserver" in err
    code, _, err = run("frame-test", "--no-such-option")
    assert code == 2 and "No such option" in err
    code, out, err = run("frame-test", "--json", "--no-such-option")
    assert code == 2 and json.loads(out)["error"]["kind"] == "usage"
    code, _, err = run("no-such-command")
    assert code == 2


def test_strict_turns_warnings_into_failure(run) -> None:
    assert run("frame-test", "--fail", "warn")[0] == 0
    assert run("frame-test", "--fail", "warn", "--strict")[0] == 1


def test_text_output_has_no_colour_when_piped_or_no_color(run, monkeypatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    _, out, _ = run("frame-test", "--fail", "warn")
    assert "\x1b[" in out
    monkeypatch.setenv("NO_COLOR", "1")
    _, out, _ = run("frame-test", "--fail", "warn")
    assert "\x1b[" not in out


def test_console_entry_points() -> None:
    for argv in (["-m", "smtpcli", "--version"], ["-m", "smtpcli", "-V"]):
        out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=True)
        assert out.stdout.startswith("smtpcli, version ")
    out = subprocess.run([sys.executable, "-m", "smtpcli", "-h"], capture_output=True, text=True)
    assert out.returncode == 0
    for name in COMMANDS:
        assert name in out.stdout
    assert "Exit codes:" in out.stdout
