"""`smtpcli mailbox list|show|wait|clear` against a real `serve --http` (in-process server)."""

from __future__ import annotations

import json
import smtplib
import threading
import uuid

import pytest

from smtpcli.server.config import ServeConfig
from smtpcli.server.runner import run_in_thread
from tests.test_architecture import _modules_after


@pytest.fixture(scope="module")
def served():
    server = run_in_thread(ServeConfig(port=0, http_port=0, grace=0.5))
    yield server
    server.stop()


def _send(served, subject: str, to: str = "bob@example.test") -> None:
    body = f"From: a@example.test\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n"
    with smtplib.SMTP(served.host, served.port, timeout=10) as smtp:
        smtp.sendmail("a@example.test", [to], body.encode())


def test_wait_list_show_clear(cli, served) -> None:
    url = served.server.http.url
    tag = uuid.uuid4().hex[:8]
    threading.Timer(0.2, _send, (served, f"{tag} welcome", "eve@example.test")).start()
    code, out, err = cli("mailbox", "wait", f"to:eve subject:{tag}", "--timeout", "10",
                         "--http", url, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == 1 and doc["facts"]["message"]["Subject"] == f"{tag} welcome"

    code, out, _ = cli("mailbox", "list", tag, "--http", url)
    assert code == 0 and f"{tag} welcome" in out and "1 message matching" in out

    code, out, _ = cli("mailbox", "show", "latest", "--http", url)
    assert code == 0 and "MAIL FROM: <a@example.test>" in out and f"body of {tag}" in out
    code, out, _ = cli("mailbox", "show", "latest", "--raw", "--http", url)
    assert code == 0 and f"Subject: {tag} welcome" in out

    _send(served, f"{tag} second", "eve@example.test")
    code, out, _ = cli("mailbox", "list", tag, "--limit", "1", "--http", url, "--json")
    listed = json.loads(out)["facts"]
    assert code == 0 and len(listed["messages"]) == 1 and listed["messages_count"] == 2

    code, out, _ = cli("mailbox", "clear", tag, "--http", url, "--json")
    assert code == 0 and json.loads(out)["facts"]["deleted"] == 2
    code, out, _ = cli("mailbox", "list", tag, "--http", url, "--json")
    assert json.loads(out)["facts"]["messages_count"] == 0


def test_wait_timeout_exits_1(cli, served) -> None:
    code, out, _ = cli("mailbox", "wait", "subject:never-sent", "--timeout", "0.2",
                       "--http", served.server.http.url, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["status"] == "fail"
    assert doc["findings"][0]["id"] == "mailbox.wait"


def test_errors(cli, served) -> None:
    url = served.server.http.url
    assert cli("mailbox", "show", "no-such-id", "--http", url)[0] == 2
    code, _, err = cli("mailbox", "list", 'subject:"open', "--http", url)
    assert code == 2 and "quote" in err
    code, _, err = cli("mailbox", "list", "--http", "not a url")
    assert code == 2 and "give the server's URL" in err
    # Nothing listens on a port we just bound and closed.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    code, _, err = cli("mailbox", "list", "--http", f"http://127.0.0.1:{dead}")
    assert code == 3 and "cannot reach" in err


def test_serve_without_http_does_not_import_aiohttp() -> None:
    code = ("import sys\nsys.argv=['smtpcli','serve','--listen','127.0.0.1:0','--exit-after','0',"
            "'--grace','0']\nfrom smtpcli.cli.main import main\ntry:\n    main()\n"
            "except SystemExit:\n    pass")
    modules = _modules_after(code)
    assert "aiosmtpd" in modules and "aiohttp" not in modules
