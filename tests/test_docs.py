"""The README and docs/ stay true: set-up commands first, one page per command, generated
reference current, every link resolves, every command line in the tour exists."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

from smtpcli.cli.registry import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
README_PATH = ROOT / "README.md"
README = README_PATH.read_text(encoding="utf-8")
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))


def _setup_commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert block, "README must start with the set-up commands in a sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_first_lines_are_the_two_setup_commands() -> None:
    assert README.index("```sh") < 40
    run_main, run_tests = _setup_commands()[:2]
    assert run_main.endswith("smtpcli demo") and "pip install" in run_main
    assert "pip install" in run_tests and "'.[test]'" in run_tests and "pytest" in run_tests


def test_readme_is_one_page() -> None:
    assert len(README.encode("utf-8")) <= 12 * 1024


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    run_tests = _setup_commands()[1]
    install = re.search(r"pip install (?:-q )?(-e '\.\[test\]')", run_tests)
    assert install and install.group(1) in ci
    pytest_args = run_tests.split(".venv/bin/pytest", 1)[1].strip()
    assert re.search(rf"\.venv/bin/pytest {re.escape(pytest_args)}\b", ci)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_a_docs_page_linked_from_the_readme(name: str) -> None:
    page = DOCS / f"{name}.md"
    assert page.exists(), f"docs/{name}.md is missing"
    title = page.read_text(encoding="utf-8").splitlines()[0]
    assert title.startswith("# ") and f"smtpcli {name}" in title, title
    assert f"(docs/{name}.md)" in README, f"README does not link docs/{name}.md"


def test_every_exit_code_is_documented() -> None:
    from smtpcli.errors import ExitCode

    for text in (README, (DOCS / "output.md").read_text(encoding="utf-8")):
        table = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
        for code in ExitCode:
            assert re.search(rf"^\| {int(code)} \|", table, re.M), code


def test_command_reference_is_current() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_docs_reference.py"),
                           "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading slugs: lower case, punctuation dropped, spaces to hyphens."""
    slugs = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        slugs.add(slug)
    return slugs


def _links(markdown: str) -> list[str]:
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)  # links in code blocks are not links
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", [README_PATH, *PAGES], ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    broken = []
    for link in _links(text):
        if re.match(r"^[a-z]+:", link):
            continue  # an absolute URL: not checked offline
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        if not path.exists():
            broken.append(link)
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path.read_text("utf-8")):
            broken.append(link)
    assert not broken, f"{page.name}: broken links {broken}"


def _tour_lines() -> list[str]:
    tour = README.split("## A tour", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", tour, re.S)
    assert block
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def _resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    from smtpcli.cli.main import cli

    command: click.Command = cli
    ctx = click.Context(cli, info_name="smtpcli")
    rest = words[1:]
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"no command {rest[0]!r} in {' '.join(words)}"
        ctx = click.Context(sub, info_name=rest[0], parent=ctx)
        command, rest = sub, rest[1:]
    return command, rest


@pytest.mark.parametrize("line", _tour_lines())
def test_tour_command_lines_exist(line: str) -> None:
    words = shlex.split(line)
    assert words[0] == "smtpcli"
    command, rest = _resolve(words)
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    unknown = [w.split("=")[0] for w in rest if w.startswith("-") and w.split("=")[0] not in known]
    assert not unknown, f"{line}: unknown options {unknown}"
