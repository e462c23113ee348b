"""Building smtpcli's sdist and wheel in a test: outside the checkout, without the network.

The ``dist`` fixture builds them once per test process; the tests using it carry
``xdist_group("release-build")``, so they share one worker and one build.

Outside the checkout: setuptools writes ``smtpcli.egg-info/`` and ``build/`` next to the
sources it builds; in the checkout those would race between parallel test workers (and a stale
``build/`` would be packaged in place of the tree). So the tree is copied to a temporary folder
first, leaving out what is not source (virtualenvs, caches, VCS data, earlier builds).

Without the network: the build dependencies (setuptools, wheel) are in the ``test`` extra, so
pip needs no build isolation and no package index (``--no-index``); with neither, it never
retries an unreachable index with back-off (tests never leave loopback).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Not sources: never copied into the build tree.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
    ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", "node_modules")


def run(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a build step; its output is the assertion message when it fails."""
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=300, **kw)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done


def copy_tree(dest: Path) -> Path:
    """The checkout's sources copied to ``dest`` (which must not exist yet)."""
    shutil.copytree(ROOT, dest, ignore=NOT_SOURCE)
    return dest


def offline_env() -> dict[str, str]:
    """pip's environment: no index, no retries (a configured index would otherwise be tried)."""
    return {**os.environ, "PIP_NO_INDEX": "1", "PIP_RETRIES": "0"}


def pip_wheel(source: Path, out: Path) -> Path:
    """``pip wheel`` of a source tree or sdist into ``out``, offline; the wheel's path."""
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
        "--no-index", "--retries", "0", "-w", str(out), str(source), env=offline_env())
    [wheel] = out.glob("smtpcli-*.whl")
    return wheel


def build_sdist(tree: Path, out: Path) -> Path:
    """The sdist of a source tree through setuptools' PEP 517 hook, as any build frontend
    calls it.

    Not ``python -m build``: it is not a dependency, and in a checkout a ``build/`` folder left
    by setuptools would be imported in its place.
    """
    code = ("import sys; from setuptools import build_meta as b; "
            "print(b.build_sdist(sys.argv[1]))")
    run(sys.executable, "-c", code, str(out), cwd=tree)
    [sdist] = out.glob("smtpcli-*.tar.gz")
    return sdist


_BUILT: dict[str, Path] = {}  # one build per process, whichever module's `dist` asks first


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist of a copy of the checkout, and the wheel built from that sdist (not from the
    tree: a file missing from the sdist is then missing from the wheel too)."""
    if not _BUILT:
        tmp = tmp_path_factory.mktemp("release")
        out = tmp / "dist"
        out.mkdir()
        sdist = build_sdist(copy_tree(tmp / "src"), out)
        _BUILT.update(sdist=sdist, wheel=pip_wheel(sdist, out))
    return dict(_BUILT)
