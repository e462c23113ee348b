"""Wall and CPU time of one child process, measured exactly.

``subprocess.run(..., timeout=...)`` waits by polling with sleeps that double up to 50 ms, so
every wall time it yields is rounded up to the next step of 31.5, 63.5, 113.5, 163.5 ... ms:
a 40 ms and a 60 ms command both read 64 ms. Here the child is reaped by a blocking
``os.wait4``, which also returns that child's own CPU time (user + system); a timer thread
kills it if it runs past the timeout.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time


def run_timed(argv: list[str], env: dict[str, str] | None = None,
              timeout: float = 60.0) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, exit code) of ``argv`` with stdout/stderr discarded."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_utime + usage.ru_stime, proc.returncode


def instructions(argv: list[str], env: dict[str, str] | None = None,
                 timeout: float = 120.0) -> int | None:
    """Machine instructions ``argv`` executes, counted by valgrind's callgrind (None without
    valgrind). Unlike a time, the count is the same on a busy machine and a quiet one, so two
    commands compare exactly; a Python process runs fewer instructions per cycle than Perl or C,
    so the wall-time ratio is somewhat higher than the instruction ratio."""
    import re
    import shutil

    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    out = subprocess.run([valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                         timeout=timeout)
    found = re.search(r"Collected\s*:\s*(\d+)", out.stderr)
    return int(found.group(1)) if found else None
