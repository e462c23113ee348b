"""Ctrl-C: every command stops within half a second, exits 130, and prints no traceback.

The first SIGINT raises ``KeyboardInterrupt`` in the main thread as usual, so commands unwind
and ``main`` prints ``smtpcli: interrupted``. Unwinding can hang, though: a thread pool joins
its workers (each blocked in a network read up to its timeout), ``asyncio.run`` waits for its
executor threads, and asyncio logs "Future exception was never retrieved" for futures the
interruption orphaned. So the handler also silences those reports and arms a watchdog that ends
the process with exit 130 if unwinding has not finished within ``GRACE`` seconds. A second
Ctrl-C ends it at once. A command whose normal end is Ctrl-C (``demo --keep-serving``) calls
``handled()`` to finish its own bounded clean-up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

GRACE = 0.2  # seconds of orderly unwinding before the hard exit (the promise is 0.5 s)
EXIT_CODE = 130  # 128 + SIGINT, the shell's convention

_said = threading.Event()  # "smtpcli: interrupted" already written
_armed = threading.Event()  # the first SIGINT has arrived
_watchdogs: list[threading.Timer] = []


def say_interrupted() -> None:
    """Write the one stderr line, once (from main or from the watchdog)."""
    if _said.is_set():
        return
    _said.set()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    with contextlib.suppress(OSError):
        os.write(2, b"smtpcli: interrupted\n")


def _flush_stdout() -> None:
    with contextlib.suppress(Exception):
        sys.stdout.flush()


def _hard_exit() -> None:
    # Output already printed reaches its reader, unless the main thread holds stdout's lock.
    flusher = threading.Thread(target=_flush_stdout, daemon=True)
    flusher.start()
    flusher.join(0.05)
    say_interrupted()
    os._exit(EXIT_CODE)


def _quiet() -> None:
    """No reports of what the interruption itself left behind (they are not errors)."""
    import logging  # only once interrupted: logging costs start-up time on every command
    import warnings

    logging.getLogger("asyncio").disabled = True
    logging.getLogger("concurrent.futures").disabled = True
    # A coroutine created just before the interruption (check-domain starts a family's checks
    # as several at once) is dropped unstarted: Python warns about it when it is collected.
    warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
    sys.unraisablehook = lambda unraisable: None
    threading.excepthook = lambda args: None


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    if _armed.is_set():
        _hard_exit()  # a second Ctrl-C: no more waiting
    _armed.set()
    _quiet()
    watchdog = threading.Timer(GRACE, _hard_exit)
    watchdog.daemon = True
    _watchdogs.append(watchdog)
    watchdog.start()
    raise KeyboardInterrupt


def handled() -> None:
    """A command that stops on Ctrl-C by design (demo --keep-serving) caught it and finishes
    its own bounded clean-up: no hard exit in the middle of it. A second Ctrl-C still ends it."""
    while _watchdogs:
        _watchdogs.pop().cancel()


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Install the handler for the duration of a command (restored after: tests run commands
    in-process). Only from the main thread, where signals are delivered."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _said.clear()
    _armed.clear()
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
