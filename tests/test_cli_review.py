"""Whole-CLI consistency: one-line errors, shared options, help text, env vars, text layout."""

from __future__ import annotations

import json

import pytest

from smtpcli.cli import main as main_module
from smtpcli.cli.state import STATE


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]):
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
