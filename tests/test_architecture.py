"""The layering rules of DESIGN.md, enforced."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIBRARY_PACKAGES = [
    "smtp", "probe", "security", "loadgen", "dnsq", "checks", "inspection", "codes", "server"]
UI_MODULES = {"click", "rich", "prompt_toolkit"}
HEAVY = ["dns", "checkdmarc", "dkim", "aiosmtpd", "cryptography", "prompt_toolkit", "spf", "rich",
         "aiohttp"]


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", LIBRARY_PACKAGES)
def test_library_packages_never_import_ui(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / "smtpcli" / package).rglob("*.py")):
        bad = _imported_roots(path) & UI_MODULES
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, offenders


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    import json

    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_help_imports_no_command_module_and_nothing_heavy() -> None:
    code = (
        "import sys\nsys.argv=['smtpcli','--help']\nfrom smtpcli.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    modules = _modules_after(code)
    assert not _heavy_in(modules)
    commands = [m for m in modules if m.startswith("smtpcli.cli.") and m not in {
        "smtpcli.cli.main", "smtpcli.cli.registry", "smtpcli.cli.state"}]
    assert commands == []


def test_explain_imports_nothing_heavy() -> None:
    explain = ROOT / "smtpcli" / "cli" / "explain.py"
    if not explain.exists():
        pytest.skip("explain not built yet")
    code = (
        "import sys\nsys.argv=['smtpcli','explain','550','5.7.26']\n"
        "from smtpcli.cli.main import main\ntry:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert not _heavy_in(_modules_after(code))


def test_every_registered_command_module_exists_and_exposes_command() -> None:
    from smtpcli.cli.registry import COMMANDS

    missing = [name for name, (module, _) in COMMANDS.items()
               if not (ROOT / (module.replace(".", "/") + ".py")).exists()]
    # Commands are delivered issue by issue; the registry may only name modules that exist.
    assert not missing, f"registry names commands without a module: {missing}"
