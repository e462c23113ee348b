"""The README stays true: set-up commands, one section per command, generated reference."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from smtpcli.cli.registry import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _setup_commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert block, "README must start with the set-up commands in a sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_first_lines_are_the_two_setup_commands() -> None:
    assert README.index("```sh") < 40
    run_main, run_tests = _setup_commands()[:2]
    assert run_main.endswith("smtpcli demo") and "pip install" in run_main
    assert "pip install" in run_tests and "'.[test]'" in run_tests and "pytest" in run_tests


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    run_tests = _setup_commands()[1]
    install = re.search(r"pip install (?:-q )?(-e '\.\[test\]')", run_tests)
    assert install and install.group(1) in ci
    assert re.search(r"\.venv/bin/pytest\b", ci)


def test_every_command_has_a_readme_section() -> None:
    for name in COMMANDS:
        assert f"<!-- section:{name} -->" in README, name
        body = README.split(f"<!-- section:{name} -->", 1)[1].split(f"<!-- /section:{name} -->")[0]
        assert f"smtpcli {name}" in body or f"`{name}`" in body, f"section {name} is empty"


def test_every_exit_code_is_documented() -> None:
    from smtpcli.errors import ExitCode

    table = README.split("## Exit codes", 1)[1].split("##", 1)[0]
    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \|", table, re.M), code


def test_command_reference_is_current() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_readme_reference.py"),
                           "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
