"""Helpers for the serve/bench tests: an in-process capture server and a `smtpcli serve` subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from smtpcli.server.config import ServeConfig
from smtpcli.server.runner import ThreadedServer, run_in_thread


@dataclass
class Serve:
    """An in-process capture server plus every event it emitted."""

    threaded: ThreadedServer
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.threaded.port

    @property
    def messages(self) -> list[Any]:
        return self.threaded.messages

    def stop(self) -> Any:
        return self.threaded.stop()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]


@pytest.fixture
def capture_server() -> Iterator[Any]:
    """Factory: ``capture_server(**ServeConfig fields)`` on a free loopback port."""
    started: list[Serve] = []

    def factory(**kw: Any) -> Serve:
        kw.setdefault("port", 0)
        kw.setdefault("grace", 1.0)
        events: list[dict[str, Any]] = []
        threaded = run_in_thread(ServeConfig(**kw), events.append)
        serve = Serve(threaded, events)
        started.append(serve)
        return serve

    yield factory
    for serve in started:
        serve.stop()


SMTPCLI = [sys.executable, "-m", "smtpcli"]


@dataclass
class ServeProcess:
    """`smtpcli serve --json` as a subprocess; `port` comes from its listening event."""

    proc: subprocess.Popen[str]
    listening: dict[str, Any]

    @property
    def port(self) -> int:
        return int(self.listening["port"])

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def finish(self, timeout: float = 20) -> tuple[int, list[dict[str, Any]], str]:
        out, err = self.proc.communicate(timeout=timeout)
        events = [json.loads(line) for line in out.splitlines() if line.strip()]
        return self.proc.returncode, [self.listening, *events], err


def start_serve_process(*args: str) -> ServeProcess:
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [*SMTPCLI, "serve", "--json", "--listen", "127.0.0.1:0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read() if proc.stderr else ""
        proc.wait(5)
        raise AssertionError(f"serve did not start: rc={proc.returncode} {err}")
    event = json.loads(line)
    assert event["event"] == "listening", event
    return ServeProcess(proc, event)
