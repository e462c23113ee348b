"""Postfix's ``smtp-sink`` on a free loopback port (a real, terse foreign server).

It advertises ``AUTH PLAIN LOGIN`` and answers any AUTH with ``250 2.0.0 Ok`` (not 235), takes
any mail and throws it away. Skips where Postfix is not installed, fails in CI
(SMTPCLI_REQUIRE_INTEROP).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.postfix import free_port, require_tool


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[int]:
    """Start ``smtp-sink`` and yield its port on 127.0.0.1."""
    sink = require_tool("smtp-sink")
    conf = tmp_path / "sinkconf"
    conf.mkdir()
    (conf / "main.cf").write_text("")  # its own (empty) config, not the machine's
    port = free_port()
    argv = [sink, *(["-u", "postfix"] if os.geteuid() == 0 else []), f"127.0.0.1:{port}", "16"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "MAIL_CONFIG": str(conf)})
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "smtp-sink did not start"
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
