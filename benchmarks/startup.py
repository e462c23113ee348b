"""Start-up time of smtpcli, side by side with Python itself, click and swaks.

    python benchmarks/startup.py [--runs 15] [--no-regular-install] [--instructions]

Median wall time over --runs runs (interleaved round-robin, after two warm-up runs, so machine
noise hits every command alike) of:
    python -c pass, python -c 'import click', swaks --version,
    smtpcli --version, smtpcli --help, smtpcli explain 550 5.7.26
Targets (issue 17): --version and --help within 1.5x of `python -c 'import click'`;
`explain 550 5.7.26` under 2x of `swaks --version`. With --instructions, each row of the
regular install also runs once under valgrind's callgrind: instruction counts, which do not
move with the machine's load.

The interpreter and console script are the ones of the running venv (sys.executable and the
`smtpcli` next to it). That venv has smtpcli installed in editable mode, whose import hook is
installed by a .pth file at every interpreter start (it imports pathlib and importlib.util) and
then resolves each smtpcli module. To see what a regular install costs, the same rows are
measured again in a throw-away venv whose site-packages holds a plain copy of the package (what
installing the wheel puts there; no wheel is built because building one needs the `wheel`
package and no network) and reaches the dependencies through a path-only .pth line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from timing import instructions, run_timed  # noqa: E402


def child_env(pycache: str | None) -> dict[str, str]:
    """The environment of the measured commands. With ``pycache``, bytecode caching is on (as
    on a user's machine) but the .pyc files go to a temporary directory, not the work tree."""
    env = {**os.environ, "NO_COLOR": "1"}
    if pycache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def measure(commands: dict[str, list[str]], runs: int,
            env: dict[str, str]) -> dict[str, tuple[float, float, float]]:
    """name -> (median wall, min wall, median CPU) seconds over ``runs`` interleaved runs.

    CPU time (user + system of the child) is reported too: on a busy shared machine wall
    time jumps between scheduler quanta, CPU time much less."""
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(runs + 2):
        for name, argv in commands.items():
            elapsed, used, _ = run_timed(argv, env)
            if i >= 2:  # the first two rounds warm the page cache and bytecode
                wall[name].append(elapsed)
                cpu[name].append(used)
    return {name: (statistics.median(wall[name]), min(wall[name]), statistics.median(cpu[name]))
            for name in commands}


def rows_for(python: str, smtpcli: str) -> dict[str, list[str]]:
    rows = {
        "python -c pass": [python, "-c", "pass"],
        "python -c 'import click'": [python, "-c", "import click"],
    }
    swaks = shutil.which("swaks")
    if swaks:
        rows["swaks --version"] = [swaks, "--version"]
    rows.update({
        "smtpcli --version": [smtpcli, "--version"],
        "smtpcli --help": [smtpcli, "--help"],
        "smtpcli explain 550 5.7.26": [smtpcli, "explain", "550", "5.7.26"],
    })
    return rows


def regular_install(tmp: Path) -> tuple[str, str]:
    """A venv with a plain copy of the package; dependencies from the current venv."""
    import site
    import sysconfig

    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(tmp)], check=True)
    purelib = Path(subprocess.run(
        [str(tmp / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True).stdout.strip())
    deps = [p for p in site.getsitepackages() if p == sysconfig.get_path("purelib")]
    # A path-only line: the dependencies' directory is added, but its .pth files (the
    # editable-install hook among them) are not run.
    (purelib / "_deps.pth").write_text("\n".join(deps) + "\n")
    shutil.copytree(REPO / "smtpcli", purelib / "smtpcli",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    python = str(tmp / "bin" / "python")
    subprocess.run([python, "-m", "compileall", "-q", str(purelib / "smtpcli")], check=True)
    script = tmp / "bin" / "smtpcli"
    script.write_text(f"#!{python}\nfrom smtpcli.cli.entry import run\n"
                      "if __name__ == '__main__':\n    run()\n")
    script.chmod(0o755)
    return python, str(script)


def report(title: str, results: dict[str, tuple[float, float, float]]) -> dict[str, float]:
    print(f"\n{title}")
    print(f"  {'command':<30} {'median ms':>10} {'min ms':>8} {'cpu ms':>8}")
    for name, (med, low, cpu) in results.items():
        print(f"  {name:<30} {med * 1000:>10.1f} {low * 1000:>8.1f} {cpu * 1000:>8.1f}")
    pairs = {"version_vs_click": ("smtpcli --version", "python -c 'import click'", 1.5),
             "help_vs_click": ("smtpcli --help", "python -c 'import click'", 1.5)}
    if "swaks --version" in results:
        pairs["explain_vs_swaks"] = ("smtpcli explain 550 5.7.26", "swaks --version", 2.0)
    ratios: dict[str, float] = {}
    print(f"  {'ratio (target)':<30} {'wall':>10} {'cpu':>8}")
    for key, (ours, theirs, target) in pairs.items():
        wall = results[ours][0] / results[theirs][0]
        cpu = results[ours][2] / results[theirs][2]
        ratios[key], ratios[key + "_cpu"] = wall, cpu
        verdict = "ok" if wall <= target else "MISSED"
        print(f"  {key + f' (<= {target}x)':<30} {wall:>9.2f}x {cpu:>7.2f}x  {verdict}")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-regular-install", action="store_true",
                        help="measure only the current (editable) install")
    parser.add_argument("--env-as-is", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE if set (every run then compiles "
                             "smtpcli from source); default: bytecode caching on")
    parser.add_argument("--instructions", action="store_true",
                        help="also count each regular-install row's machine instructions")
    args = parser.parse_args()
    python = sys.executable
    smtpcli = str(Path(python).with_name("smtpcli"))
    out: dict[str, object] = {"runs": args.runs, "bytecode_cache": not args.env_as_is}
    with tempfile.TemporaryDirectory(prefix="smtpcli-startup-") as tmp:
        env = child_env(None if args.env_as_is else str(Path(tmp) / "pycache"))
        print(f"bytecode cache: {'as the environment says' if args.env_as_is else 'on'}; "
              f"{args.runs} runs per command, medians")
        results = measure(rows_for(python, smtpcli), args.runs, env)
        out["editable"] = {"ms": {k: round(v[0] * 1000, 1) for k, v in results.items()},
                           "ratios": report(f"editable install ({python})", results)}
        if not args.no_regular_install:
            py2, cli2 = regular_install(Path(tmp) / "venv")
            results = measure(rows_for(py2, cli2), args.runs, env)
            out["regular"] = {"ms": {k: round(v[0] * 1000, 1) for k, v in results.items()},
                              "ratios": report("regular install (package copied into a venv)",
                                               results)}
            if args.instructions:
                counts = {name: instructions(argv, env)
                          for name, argv in rows_for(py2, cli2).items()}
                print("\ninstructions (regular install, callgrind)")
                for name, count in counts.items():
                    print(f"  {name:<30} {count / 1e6 if count else float('nan'):>10.1f} M")
                out["instructions"] = counts
    print("\n" + json.dumps(out))


if __name__ == "__main__":
    main()
