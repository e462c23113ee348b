"""Release quality: the sdist builds, a wheel builds from that sdist (so the sdist is complete,
package data included), the wheel installs into a fresh virtualenv and runs; the version
comes from one place (smtpcli/__init__.py); shell completions are current and work."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import smtpcli
from tests.packaging import ROOT, dist, offline_env, run  # noqa: F401  (fixture)


@pytest.mark.xdist_group("release-build")
def test_version_comes_from_one_place(dist) -> None:  # noqa: F811
    version = smtpcli.__version__
    assert dist["sdist"].name == f"smtpcli-{version}.tar.gz"
    assert dist["wheel"].name.startswith(f"smtpcli-{version}-")
    with zipfile.ZipFile(dist["wheel"]) as zf:
        meta = zf.read(f"smtpcli-{version}.dist-info/METADATA").decode()
        names = zf.namelist()
    assert f"\nVersion: {version}\n" in meta
    # Package data the commands need at run time is in the wheel.
    assert "smtpcli/codes/data/enhanced-status-codes.csv" in names
    assert not any(n.startswith("tests/") for n in names)
    with tarfile.open(dist["sdist"]) as tf:
        members = tf.getnames()
    assert f"smtpcli-{version}/README.md" in members
    assert f"smtpcli-{version}/pyproject.toml" in members


@pytest.mark.xdist_group("release-build")
def test_wheel_installs_into_a_fresh_venv_and_runs(dist, tmp_path) -> None:  # noqa: F811
    venv = tmp_path / "venv"
    # Without pip of its own (ensurepip costs seconds): this pip installs into it (--python).
    run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    py = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
        "--no-index", "--retries", "0", "--no-compile", str(dist["wheel"]), env=offline_env())
    # The dependencies come from this interpreter's site-packages (no download), after the
    # fresh venv's own: the smtpcli that runs must be the installed wheel.
    fresh_site = Path(run(str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                      .stdout.strip())
    (fresh_site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMTPCLI_")}
    env["PYTHONPATH"] = ""
    where = run(str(py), "-c", "import smtpcli; print(smtpcli.__file__)", cwd=tmp_path, env=env)
    assert where.stdout.startswith(str(fresh_site))
    version = run(str(venv / "bin" / "smtpcli"), "--version", cwd=tmp_path, env=env)
    assert version.stdout.strip() == f"smtpcli, version {smtpcli.__version__}"
    # A real command, with the package data from the wheel.
    explained = subprocess.run([str(venv / "bin" / "smtpcli"), "explain", "--json", "5.1.1"],
                               capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert explained.returncode == 0, explained.stderr
    assert '"schema": 1' in explained.stdout and "5.1.1" in explained.stdout


def test_completions_are_current() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_completions.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_completions_match_what_smtpcli_prints() -> None:
    exe = Path(sys.executable).parent / "smtpcli"
    for shell in ("bash", "zsh", "fish"):
        env = {**os.environ, "_SMTPCLI_COMPLETE": f"{shell}_source"}
        done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0
        assert done.stdout == (ROOT / "completions" / f"smtpcli.{shell}").read_text()


def test_bash_completion_completes_commands_and_options(tmp_path) -> None:
    bindir = Path(sys.executable).parent
    script = (
        f"source {ROOT / 'completions' / 'smtpcli.bash'}\n"
        "COMP_WORDS=(smtpcli pro); COMP_CWORD=1; _smtpcli_completion smtpcli\n"
        'echo "commands: ${COMPREPLY[*]}"\n'
        "COMPREPLY=(); COMP_WORDS=(smtpcli explain --js); COMP_CWORD=2; _smtpcli_completion smtpcli\n"
        'echo "options: ${COMPREPLY[*]}"\n'
    )
    env = {**os.environ, "PATH": f"{bindir}:{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          env=env)
    assert done.returncode == 0, done.stderr
    assert "commands: probe" in done.stdout
    assert "options: --json" in done.stdout
