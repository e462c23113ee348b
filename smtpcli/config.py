"""Profiles from ``$XDG_CONFIG_HOME/smtpcli/config.toml``.

A profile is a table ``[profiles.NAME]`` of option defaults for every command, with optional
per-command sub-tables (``[profiles.NAME.send]``). Command-line options and ``SMTPCLI_*``
environment variables win over profile values. Passwords never live in profiles.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from smtpcli.errors import UsageError

FORBIDDEN_KEYS = {"password", "secret", "token", "oauth_token"}


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "smtpcli" / "config.toml"


def state_dir() -> Path:
    """Where history and other state live (XDG state directory)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "smtpcli"


def load_config(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read config {path}: {exc}") from None


def profile_default_map(name: str, commands: list[str], path: Path | None = None) -> dict[str, Any]:
    """click ``default_map`` for profile ``name``: ``{command: {param: value}}``."""
    config = load_config(path)
    profiles = config.get("profiles", {})
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none defined"
        raise UsageError(f"unknown profile {name!r} in {path or config_path()} ({known})")
    profile = profiles[name]
    common = {_param(k): v for k, v in profile.items() if not isinstance(v, dict)}
    result: dict[str, Any] = {}
    for command in commands:
        specific = profile.get(command, {})
        merged = {**common, **{_param(k): v for k, v in specific.items()}}
        for key in merged:
            if key in FORBIDDEN_KEYS:
                raise UsageError(
                    f"profile {name!r} sets {key!r}: secrets never live in profiles "
                    "(use --password-file or SMTPCLI_PASSWORD)"
                )
        result[command] = merged
    return result


def _param(key: str) -> str:
    return key.replace("-", "_")
