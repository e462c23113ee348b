"""Regenerate the command reference in docs/ from the click app's --help texts.

Each command's page (docs/COMMAND.md) ends with its --help and its subcommands', between the
markers ``<!-- reference:COMMAND ... -->`` and ``<!-- /reference:COMMAND -->``; docs/index.md
holds the top-level ``smtpcli --help``.

Usage: python scripts/gen_docs_reference.py [--check]
With --check, exit 1 (and say which page) when a page is not current; the tests run that.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
WIDTH = 100
TOP = "smtpcli"  # the page key of the top-level help (docs/index.md)


def _help(command: click.Command, path: list[str], parent: click.Context | None,
          recurse: bool = True) -> list[str]:
    settings = {**command.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    ctx = click.Context(command, info_name=path[-1], parent=parent, **settings)
    blocks = ["", f"### `{' '.join(path)}`", "", "```text", command.get_help(ctx).rstrip(), "```"]
    if recurse and isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                blocks.extend(_help(sub, [*path, name], ctx))
    return blocks


def references() -> dict[str, str]:
    """Page key -> generated block body (``smtpcli`` for the top level, else the command)."""
    from smtpcli.cli.main import cli

    root_settings = {**cli.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    root_ctx = click.Context(cli, info_name="smtpcli", **root_settings)
    out = {TOP: "\n".join(_help(cli, ["smtpcli"], None, recurse=False)) + "\n"}
    for name in cli.list_commands(root_ctx):
        command = cli.get_command(root_ctx, name)
        if command is not None and not command.hidden:
            out[name] = "\n".join(_help(command, ["smtpcli", name], root_ctx)) + "\n"
    return out


def page_for(key: str) -> Path:
    return DOCS / ("index.md" if key == TOP else f"{key}.md")


def render(text: str, key: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- reference:{re.escape(key)} [^>]*-->\n)(.*?)(<!-- /reference:{re.escape(key)} -->)",
                         re.S)
    if not pattern.search(text):
        raise SystemExit(f"{page_for(key).relative_to(ROOT)} lacks the markers "
                         f"<!-- reference:{key} ... --> ... <!-- /reference:{key} -->")
    return pattern.sub(lambda m: m.group(1) + body + m.group(3), text, count=1)


def main(argv: list[str]) -> int:
    stale = []
    for key, body in references().items():
        page = page_for(key)
        if not page.exists():
            stale.append(f"{page.relative_to(ROOT)} is missing")
            continue
        current = page.read_text(encoding="utf-8")
        wanted = render(current, key, body)
        if current != wanted:
            if "--check" in argv:
                stale.append(f"{page.relative_to(ROOT)} reference is out of date")
            else:
                page.write_text(wanted, encoding="utf-8")
    if stale:
        for line in stale:
            print(f"{line}: run python scripts/gen_docs_reference.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
