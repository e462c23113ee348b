"""History for the REPL: a prompt_toolkit FileHistory that never stores AUTH lines or answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from smtpcli.session.text import history_allowed


def history_path() -> Path:
    """``$XDG_STATE_HOME/smtpcli/session_history``."""
    from smtpcli.config import state_dir

    return state_dir() / "session_history"


def make_history(path: Path, in_auth: Callable[[], bool]) -> Any:
    """A FileHistory that drops lines ``history_allowed`` rejects (prompt_toolkit imported here)."""
    from prompt_toolkit.history import FileHistory

    class FilteredFileHistory(FileHistory):  # type: ignore[misc]
        def append_string(self, string: str) -> None:
            if history_allowed(string, in_auth_exchange=in_auth()):
                super().append_string(string)

    path.parent.mkdir(parents=True, exist_ok=True)
    return FilteredFileHistory(str(path))
