"""Every `smtpcli ...` command line that explain's advice data or any --help text quotes names
a command and options that exist (so a `fix` never sends a user to a missing option)."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from smtpcli.cli.main import cli

DATA = Path(__file__).resolve().parents[1] / "smtpcli" / "codes" / "data"
# A quoted command line: in backticks or quotes, or an example line of a help text.
QUOTED = re.compile(r"`(smtpcli [^`]+)`|'(smtpcli [^']+)'|\"(smtpcli [^\"]+)\"")
EXAMPLE = re.compile(r"^\s*(smtpcli\s.+?)\s*$", re.M)


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _command_lines(text: str, examples: bool) -> set[str]:
    # A quoted default value such as "(default: 'smtpcli test DATE')" is not a command.
    found = {next(g for g in m.groups() if g) for m in QUOTED.finditer(text)
             if not re.search(r"default:\s*$", text[:m.start()])}
    if examples:
        found.update(m.group(1) for m in EXAMPLE.finditer(text))
    return {line.rstrip(".,;:") for line in found}


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))


def _help(path: tuple[str, ...], cmd: click.Command) -> str:
    ctx = click.Context(cmd, info_name=" ".join(("smtpcli",) + path))
    return cmd.get_help(ctx)


def _quoted_lines() -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for name in ("advice.json", "rules.json"):
        data = json.loads((DATA / name).read_text(encoding="utf-8"))
        for text in _strings(data):
            lines.extend((name, line) for line in _command_lines(text, examples=False))
    root_help = cli.get_help(click.Context(cli, info_name="smtpcli"))
    lines.extend(("smtpcli --help", line) for line in _command_lines(root_help, True))
    for path, cmd in _commands(cli):
        where = " ".join(("smtpcli",) + path) + " --help"
        lines.extend((where, line) for line in _command_lines(_help(path, cmd), True))
    return sorted(set(lines))


def _option_names(cmd: click.Command) -> set[str]:
    names = {"--help", "-h"}
    for param in cmd.params:
        if isinstance(param, click.Option):
            names.update(param.opts + param.secondary_opts)
    return names


def check_command_line(line: str) -> str | None:
    """None when ``line`` names an existing command and options, else what is wrong."""
    try:
        tokens = shlex.split(line)
    except ValueError:
        tokens = line.split()
    cmd: click.Command = cli
    path = ["smtpcli"]
    rest = tokens[1:]
    if rest and rest[0].isupper():
        return None  # a placeholder ("smtpcli COMMAND -h"): nothing concrete to check
    while isinstance(cmd, click.Group) and rest and not rest[0].startswith("-"):
        sub = cmd.get_command(click.Context(cmd), rest[0])
        if sub is None:
            return f"no command {' '.join(path)} {rest[0]}"
        path.append(rest.pop(0))
        cmd = sub
    options = _option_names(cmd)
    if isinstance(cmd, click.Group) or cmd is cli:
        options |= _option_names(cli) | {"-V", "--version"}
    for token in rest:
        if token.startswith("--") or re.fullmatch(r"-[A-Za-z0-9]", token):
            name = token.split("=", 1)[0]
            if name not in options:
                return f"{' '.join(path)} has no option {name}"
    return None


LINES = _quoted_lines()


def test_quoted_command_lines_found() -> None:
    sources = {where for where, _ in LINES}
    assert "advice.json" in sources and "smtpcli explain --help" in sources
    assert len(LINES) >= 20


@pytest.mark.parametrize("where,line", LINES, ids=[f"{w}: {c}"[:80] for w, c in LINES])
def test_quoted_command_line_exists(where: str, line: str) -> None:
    assert check_command_line(line) is None, (where, line, check_command_line(line))


def test_checker_catches_missing_commands_and_options() -> None:
    assert check_command_line("smtpcli explain --no-such-flag") == \
        "smtpcli explain has no option --no-such-flag"
    assert check_command_line("smtpcli frobnicate x") == "no command smtpcli frobnicate"
    assert check_command_line("smtpcli explain --mailbox ~/Maildir --json") is None
    assert check_command_line("smtpcli send --transcript") == \
        "smtpcli send has no option --transcript"
