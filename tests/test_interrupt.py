"""Ctrl-C sweep: SIGINT to each long-running command, as a real subprocess, while it waits on
the network. Every one exits 130 within half a second, with one line and no traceback (issue 14).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

SMTPCLI = [sys.executable, "-m", "smtpcli"]
WITHIN = 0.5  # seconds from SIGINT to exit, the promise under test


class Tarpit:
    """Accepts connections and never says a word (a greeting that never comes)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.accepted.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture
def tarpit() -> Iterator[Tarpit]:
    pit = Tarpit()
    yield pit
    pit.close()


def _interrupt(args: list[str], ready: Callable[[subprocess.Popen[bytes]], bool]) -> tuple[int, float, str]:
    """Start smtpcli ARGS, wait until ``ready``, SIGINT; (exit code, seconds to exit, stderr)."""
    proc = subprocess.Popen(SMTPCLI + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"})
    try:
        deadline = time.monotonic() + 20
        while not ready(proc):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the command never reached its wait"
            time.sleep(0.02)
        time.sleep(0.1)  # let it settle into the blocking read
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        try:
            code = proc.wait(timeout=10)
        finally:
            took = time.monotonic() - sent
        _, err = proc.communicate(timeout=5)
        return code, took, err.decode("utf-8", "replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _assert_interrupted(code: int, took: float, err: str) -> None:
    assert code == 130, err
    assert "Traceback" not in err and "never retrieved" not in err, err
    assert "smtpcli: interrupted" in err
    assert took < WITHIN, f"took {took:.2f}s to stop"


def test_probe_against_a_tarpit(tarpit: Tarpit) -> None:
    _assert_interrupted(*_interrupt(["probe", f"127.0.0.1:{tarpit.port}", "--timeout", "30"],
                                    lambda p: tarpit.accepted.is_set()))


def test_session_waiting_for_a_greeting(tarpit: Tarpit) -> None:
    _assert_interrupted(*_interrupt(["session", f"127.0.0.1:{tarpit.port}", "--timeout", "30"],
                                    lambda p: tarpit.accepted.is_set()))


def test_bench_against_a_tarpit(tarpit: Tarpit) -> None:
    _assert_interrupted(*_interrupt(["bench", f"127.0.0.1:{tarpit.port}", "--timeout", "30",
                                     "--tls", "none", "-n", "5", "-c", "2"],
                                    lambda p: tarpit.accepted.is_set()))


def test_send_against_a_tarpit(tarpit: Tarpit) -> None:
    _assert_interrupted(*_interrupt(["send", "--server", f"127.0.0.1:{tarpit.port}", "--timeout",
                                     "30", "--tls", "none", "--from", "a@example.test", "--to",
                                     "b@example.test"],
                                    lambda p: tarpit.accepted.is_set()))


def test_check_domain_against_a_slow_dns_server(dns_server) -> None:  # type: ignore[no-untyped-def]
    server = dns_server(zone_files=["example.test.zone"], delay=30.0)
    _assert_interrupted(*_interrupt(["check-domain", "example.test", "--nameserver",
                                     server.nameserver, "--timeout", "30"],
                                    lambda p: bool(server.queries)))


def test_serve_listening() -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()

    def listening(proc: subprocess.Popen[bytes]) -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return False
        return True

    _assert_interrupted(*_interrupt(["serve", "--listen", f"127.0.0.1:{port}"], listening))


def test_a_coroutine_the_interruption_orphans_is_not_reported() -> None:
    # check-domain creates a domain's family checks as coroutines before gathering them; a
    # Ctrl-C in between drops them unstarted, and Python's "never awaited" warning (with its
    # tracemalloc hint) would follow "smtpcli: interrupted" on stderr.
    code = (
        "import gc, os, signal, time\n"
        "from smtpcli import interrupt\n"
        "async def family(): pass\n"
        "with interrupt.interruptible():\n"
        "    orphan = family()\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(5)\n"
        "    except KeyboardInterrupt:\n"
        "        interrupt.handled()\n"
        "del orphan\n"
        "gc.collect()\n"
        "print('done')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0 and out.stdout == "done\n", out
    assert out.stderr == ""
