"""The runtime dependency list in pyproject.toml is exactly what smtpcli/ imports (issue 15).

Imports are read from the source (every ``import``/``from`` at any depth, since heavy modules
are imported lazily inside functions), mapped to distributions with importlib.metadata's
``packages_distributions`` and compared with ``[project] dependencies``.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def _requirement(spec: str) -> tuple[str, set[str]]:
    match = _NAME.match(spec)
    assert match, spec
    extras = {e.strip() for e in (match.group(2) or "").split(",") if e.strip()}
    return _norm(match.group(1)), extras


def imported_top_modules() -> set[str]:
    """Top-level names of every absolute import in smtpcli/ (stdlib and smtpcli excluded)."""
    found: set[str] = set()
    for path in (ROOT / "smtpcli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found
            if m not in sys.stdlib_module_names and m not in ("smtpcli", "__future__")}


def imported_distributions() -> dict[str, set[str]]:
    """Distribution -> the modules of it that smtpcli imports."""
    owners = md.packages_distributions()
    out: dict[str, set[str]] = {}
    for module in imported_top_modules():
        dists = owners.get(module)
        assert dists, f"smtpcli imports {module!r}, which no installed distribution provides"
        for dist in dists:
            out.setdefault(_norm(dist), set()).add(module)
    return out


def declared(group: str | None = None) -> dict[str, set[str]]:
    specs = (PYPROJECT["project"]["dependencies"] if group is None
             else PYPROJECT["project"]["optional-dependencies"][group])
    return dict(_requirement(s) for s in specs)


def test_runtime_dependencies_are_exactly_the_imports() -> None:
    imported = imported_distributions()
    runtime = declared()
    undeclared = sorted(set(imported) - set(runtime))
    unused = sorted(set(runtime) - set(imported))
    assert not undeclared, f"imported but not declared: {[(d, imported[d]) for d in undeclared]}"
    assert not unused, f"declared but never imported by smtpcli/: {unused}"


def test_optional_parts_come_through_their_package_extras() -> None:
    """dkimpy's Ed25519 and ARC support are its extras, not bare pynacl/authres lines; every
    extra named exists in the package's metadata and what it requires is installed."""
    runtime = declared()
    for dist, extras in runtime.items():
        if not extras:
            continue
        requires = md.requires(dist) or []
        for extra in extras:
            wanted = [r.split(";")[0] for r in requires if f'extra == "{extra}"' in r]
            assert wanted, f"{dist} has no extra {extra!r}"
            for req in wanted:
                md.version(_requirement(req)[0])  # raises PackageNotFoundError if missing
    assert "pynacl" not in runtime and "authres" not in runtime
    assert runtime["dkimpy"] >= {"arc", "ed25519"}


def test_oracle_is_a_test_dependency_only() -> None:
    """checkdmarc judges check-domain in the tests; the command never imports it."""
    assert "checkdmarc" in declared("test")
    assert "checkdmarc" not in declared()
    assert "checkdmarc" not in imported_distributions()
