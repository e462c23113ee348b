#!/usr/bin/env python3
"""Write completions/smtpcli.{bash,zsh,fish} from the click app.

The scripts are click's own (what ``_SMTPCLI_COMPLETE=bash_source smtpcli`` prints): they ask
``smtpcli`` itself for candidates at completion time, so commands and options never go stale;
only click's script template can change, which ``--check`` (run by the tests) catches.

    python scripts/gen_completions.py           # rewrite the files
    python scripts/gen_completions.py --check   # exit 1 when a file is not current
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHELLS = ("bash", "zsh", "fish")


def render(shell: str) -> str:
    """The completion script for ``shell``, as click generates it."""
    from click.shell_completion import get_completion_class

    from smtpcli.cli.main import cli

    cls = get_completion_class(shell)
    if cls is None:
        raise SystemExit(f"click has no completion for {shell}")
    return cls(cli, {}, "smtpcli", "_SMTPCLI_COMPLETE").source()


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for shell in SHELLS:
        path = ROOT / "completions" / f"smtpcli.{shell}"
        text = render(shell)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"stale completions (run python scripts/gen_completions.py): {', '.join(stale)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
