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
