"""Whole-CLI consistency: one-line errors, shared options, help text, env vars, text layout."""

from __future__ import annotations

import json

import pytest

from smtpcli.cli import main as main_module
from smtpcli.cli.state import STATE


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COLUMNS", "80")  # help and text output are judged at 80 columns

    def _run(*args: str) -> tuple[int, str, str]:
        STATE.json = STATE.traceback = False
        with pytest.raises(SystemExit) as exc:
            main_module.main(list(args))
        out, err = capsys.readouterr()
        return int(exc.value.code or 0), out, err

    return _run


@pytest.mark.parametrize("args", [
    ("bench",),
    ("demo", "--password-file", "/nonexistent/pw"),
    ("probe", "127.0.0.1", "--port", "99999"),
    ("no-such-command",),
])
def test_click_usage_errors_are_one_line(run, args: tuple[str, ...]) -> None:
    code, out, err = run(*args)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smtpcli: ") and "--help" in lines[0], err


def test_click_usage_error_in_json_mode_is_a_document(run) -> None:
    code, out, err = run("bench", "--json")
    assert code == 2 and json.loads(out)["error"]["kind"] == "usage"
    assert len(err.strip().splitlines()) == 1


# ---- one concept, one option ---------------------------------------------------------------

def all_commands() -> dict[str, object]:
    """Every command and subcommand, by its path ('dkim sign')."""
    import importlib

    import click

    from smtpcli.cli.registry import COMMANDS

    found: dict[str, object] = {}
    for name, (module, _) in COMMANDS.items():
        cmd = importlib.import_module(module).command
        found[name] = cmd
        if isinstance(cmd, click.Group):
            for sub, subcmd in cmd.commands.items():
                found[f"{name} {sub}"] = subcmd
    return found


SHARED = ("--timeout", "--nameserver", "--dns-retries", "--cafile", "--insecure", "--user",
          "--password-file", "--password", "--auth", "--tls", "--ehlo", "--sni", "--json",
          "--strict", "--junit", "--port", "--verbose", "--concurrency")


@pytest.mark.parametrize("concept", SHARED)
def test_same_concept_same_option_everywhere(concept: str) -> None:
    import re

    import click

    shapes: dict[tuple[object, ...], list[str]] = {}
    for path, cmd in all_commands().items():
        for param in cmd.params:  # type: ignore[attr-defined]
            if not isinstance(param, click.Option) or concept not in param.opts:
                continue
            # The default named in the help may differ (bench's EHLO name); the rest may not.
            # What is in parentheses may differ (bench's EHLO default, probe's port for every MX
            # host), and what follows "AUTH mechanism:" (bench offers fewer); the rest may not.
            words = re.sub(r"\s*\([^)]*\)", "", param.help or "")
            words = re.sub(r"^(AUTH mechanism):.*", r"\1", words)
            if concept == "--timeout":
                words = ""  # "Upper bound for <what this command waits on>."
            shape = (tuple(sorted(param.opts)), param.name, param.metavar, words)
            shapes.setdefault(shape, []).append(path)
    assert len(shapes) <= 1, f"{concept} differs between commands: {shapes}"


# ---- environment variables -----------------------------------------------------------------

def test_every_option_has_its_command_env_var() -> None:
    import click

    from smtpcli.cli.main import cli
    from smtpcli.cli.registry import COMMANDS

    ctx = click.Context(cli)
    checked = 0
    for name in COMMANDS:
        cmd = cli.get_command(ctx, name)
        assert cmd is not None
        subs = [(name, cmd)]
        if isinstance(cmd, click.Group):
            subs = [(f"{name} {n}", c) for n, c in cmd.commands.items()]
        for path, command in subs:
            prefix = "SMTPCLI_" + path.upper().replace("-", "_").replace(" ", "_")
            for param in command.params:
                longs = [o for o in param.opts if o.startswith("--")]
                if isinstance(param, click.Option) and longs:
                    want = f"{prefix}_{longs[0][2:].upper().replace('-', '_')}"
                    envvars = [param.envvar] if isinstance(param.envvar, str) else param.envvar
                    assert want in envvars, (path, longs[0], param.envvar)
                    checked += 1
    assert checked > 150


def test_env_vars_reach_commands(run, dns_server, monkeypatch: pytest.MonkeyPatch) -> None:
    server = dns_server()
    ns = f"127.0.0.1:{server.port}"
    # The per-command name (named after the option, not click's 'nameservers') wins over the
    # short shared one, which here points at a port nobody answers on.
    monkeypatch.setenv("SMTPCLI_NAMESERVER", "127.0.0.1:9")
    monkeypatch.setenv("SMTPCLI_CHECK_DOMAIN_NAMESERVER", ns)
    monkeypatch.setenv("SMTPCLI_CHECK_DOMAIN_ONLY", "spf")
    monkeypatch.setenv("SMTPCLI_CHECK_DOMAIN_JSON", "1")
    code, out, _ = run("check-domain", "example.test", "--timeout", "2")
    doc = json.loads(out)
    assert code == 0 and {f["id"].split(".")[0] for f in doc["findings"]} == {"spf"}
    monkeypatch.setenv("SMTPCLI_NAMESERVER", ns)  # the short name alone, for dkim check-key
    monkeypatch.setenv("SMTPCLI_DKIM_CHECK_KEY_SELECTOR", "selector1")
    code, out, _ = run("dkim", "check-key", "--domain", "example.test", "--json")
    assert code == 0 and json.loads(out)["status"] == "ok"


def test_traceback_env_zero_means_no(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTPCLI_TRACEBACK", "0")
    code, _, err = run("inspect", "/nonexistent/x.eml", "--offline")
    assert code == 2 and err.strip() == "smtpcli: cannot read /nonexistent/x.eml: No such file or directory"


# ---- help ----------------------------------------------------------------------------------

def test_registry_line_is_the_docstring_first_line() -> None:
    from smtpcli.cli.registry import COMMANDS

    commands = all_commands()
    for name, (_, line) in COMMANDS.items():
        first = (commands[name].help or "").strip().splitlines()[0]  # type: ignore[attr-defined]
        assert first == line, name
        # click lays the table out in 78 columns: name column 12 wide, two spaces each side.
        assert len(f"  {name:<12}  {line}") <= 78, name


@pytest.mark.parametrize("path", sorted(all_commands()))
def test_help_has_summary_examples_and_every_option(run, path: str) -> None:
    import click

    cmd = all_commands()[path]
    code, out, _ = run(*path.split(), "--help")
    assert code == 0
    lines = out.splitlines()
    assert all(len(ln) <= 80 for ln in lines), [ln for ln in lines if len(ln) > 80]
    assert "Examples:" in out and f"smtpcli {path}" in out.split("Examples:", 1)[1]
    if not isinstance(cmd, click.Group):
        for param in cmd.params:  # type: ignore[attr-defined]
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, (path, param.opts)


# ---- text output ---------------------------------------------------------------------------

def test_text_findings_fit_80_columns_and_counts_read_well(run, dns_server) -> None:
    server = dns_server()
    # Port 1: nobody listens; the fixture has no PTR for 127.0.0.1 and refuses the question.
    code, out, err = run("probe", "127.0.0.1:1", "--nameserver", f"127.0.0.1:{server.port}",
                         "--timeout", "2")
    lines = out.splitlines()
    assert code == 3 and len(err.splitlines()) <= 1
    assert all(len(ln) <= 80 for ln in lines), [ln for ln in lines if len(ln) > 80]
    assert "\x1b[" not in out  # captured output is not a terminal: no colour
    assert lines[-1].startswith("ERROR") and lines[-1].endswith("2 errors")


def test_long_finding_wraps_below_its_badge(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setenv("COLUMNS", "80")
    from smtpcli.render.text import render_text
    from smtpcli.results import Report, Status

    report = Report("x", "t", summary="done")
    report.add("dns.lookup-failed", Status.ERROR,
               "TXT lookup for selector1._domainkey.example.test failed: no server answered "
               "usefully: REFUSED", fix="ask the DNS operator why " * 5, subject="a" * 90)
    out = io.StringIO()
    render_text(report, out)
    lines = out.getvalue().splitlines()
    long_words = [ln for ln in lines if len(ln) > 80]
    assert long_words == ["        on: " + "a" * 90]  # one word is never split
    assert lines[1].startswith("          ") and lines[-1] == "ERROR done"


# ---- error paths ---------------------------------------------------------------------------

def test_bench_against_a_silent_server_could_not_complete(run) -> None:
    """A server that accepts and never greets: exit 3 with one line, as send says, not 1."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        code, out, err = run("bench", f"127.0.0.1:{port}", "-n", "2", "-c", "2",
                             "--timeout", "0.5")
        assert code == 3 and out == ""
        assert err.splitlines() == [err.strip()] and "no reply from" in err and "banner" in err
        code, out, _ = run("bench", f"127.0.0.1:{port}", "-n", "1", "--timeout", "0.5", "--json")
        assert code == 3 and json.loads(out)["error"]["kind"] == "timeout"


def test_bench_refused_says_it_plainly(run) -> None:
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        code, _, err = run("bench", f"127.0.0.1:{port}", "-n", "1")
    assert code == 3 and f"cannot connect to 127.0.0.1:{port}: Connection refused" in err


def test_every_option_in_help_is_exercised_by_a_test() -> None:
    """Each visible option of every command appears, quoted, in some test's command line."""
    import re
    from pathlib import Path

    import click

    from smtpcli.cli.main import cli

    text = "\n".join(p.read_text(encoding="utf-8")
                     for p in Path(__file__).resolve().parent.rglob("*.py"))
    untested: list[str] = []

    def walk(command: click.Command, path: list[str], ctx: click.Context) -> None:
        for param in command.params:
            opts = [*param.opts, *param.secondary_opts]
            if not isinstance(param, click.Option) or param.hidden or "--help" in opts:
                continue
            if not any(re.search(r"['\"]" + re.escape(o) + r"(['\"=]| )", text) for o in opts):
                untested.append(f"{' '.join(path)} {opts[0]}")
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(sub, [*path, name], click.Context(sub, parent=ctx, info_name=name))

    walk(cli, ["smtpcli"], click.Context(cli, info_name="smtpcli"))
    assert not untested, untested
