"""A real client written by others: the npm package ``mailpit-api``, unchanged, against
``serve --http``, reading messages sent in by ``smtpcli send`` and by swaks.

``.ci/run`` installs it (``npm ci`` in tests/js); without node or the package the test skips,
except in CI (SMTPCLI_REQUIRE_INTEROP=1), where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from smtpcli.server.config import ServeConfig
from smtpcli.server.runner import run_in_thread

JS_DIR = Path(__file__).resolve().parent / "js"


def _need(ok: bool, what: str) -> None:
    if not ok:
        if os.environ.get("SMTPCLI_REQUIRE_INTEROP"):
            pytest.fail(f"{what} is required (SMTPCLI_REQUIRE_INTEROP is set)")
        pytest.skip(f"{what} not installed")


@pytest.mark.interop
def test_mailpit_api_npm_client(cli, tmp_path: Path) -> None:
    _need(shutil.which("node") is not None, "node")
    _need((JS_DIR / "node_modules" / "mailpit-api").is_dir(), "npm package mailpit-api (npm ci in tests/js)")
    _need(shutil.which("swaks") is not None, "swaks")
    server = run_in_thread(ServeConfig(port=0, http_port=0, grace=0.5))
    try:
        tag = uuid.uuid4().hex[:8]
        address = f"{server.host}:{server.port}"
        attachment = tmp_path / "notes.txt"
        attachment.write_text("attached words\n")
        code, _, err = cli("send", "--server", address, "--from", "app@example.test",
                           "--to", "bob@example.test", "--subject", f"{tag} from smtpcli",
                           "--body", "confirm: https://app.test/c/42",
                           "--html", "<p>confirm <a href='https://app.test/c/42'>here</a></p>",
                           "--attach", str(attachment))
        assert code == 0, err
        swaks = subprocess.run(
            ["swaks", "--server", server.host, "--port", str(server.port), "--from",
             "swaks@example.test", "--to", "carol@example.test", "--header",
             f"Subject: {tag} from swaks", "--body", "swaks body"],
            capture_output=True, text=True, timeout=30)
        assert swaks.returncode == 0, swaks.stdout
        done = subprocess.run(["node", "mailpit_api_client.mjs", server.server.http.url, tag],
                              cwd=JS_DIR, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout)
    finally:
        server.stop()

    assert seen["info"]["Messages"] == 2 and seen["list"]["total"] == 2
    assert [m["Subject"] for m in seen["list"]["messages"]] == [f"{tag} from swaks",
                                                                 f"{tag} from smtpcli"]
    assert seen["searchSwaks"] == [{"ID": seen["list"]["messages"][0]["ID"],
                                    "Subject": f"{tag} from swaks", "From": "swaks@example.test",
                                    "To": ["carol@example.test"], "Read": False,
                                    "Attachments": 0}]
    assert [m["Subject"] for m in seen["searchSend"]] == [f"{tag} from smtpcli"]
    msg = seen["message"]
    assert msg["From"]["Address"] == "app@example.test"
    assert "https://app.test/c/42" in msg["Text"] and "<a href=" in msg["HTML"]
    assert msg["Attachments"][0]["FileName"] == "notes.txt"
    assert seen["attachment"]["text"] == "attached words\n"
    assert seen["attachment"]["type"].startswith("text/plain")
    assert seen["headers"]["Subject"] == [f"{tag} from smtpcli"]
    assert f"Subject: {tag} from smtpcli" in seen["raw"]
    assert "https://app.test/c/42" in seen["rendered"]
    assert seen["latestText"].strip() == "swaks body"
    assert seen["setRead"] == "ok" and seen["unreadAfter"] == 0  # one set read, one viewed
    assert seen["waited"] == f"{tag} from swaks"
    assert seen["chaos"]["Sender"] == {"ErrorCode": 451, "Probability": 0}
    assert seen["deleteOne"] == "ok" and seen["afterDeleteOne"] == 1
    assert seen["deleteSearch"] == "ok" and seen["afterDeleteSearch"] == 0
    assert seen["deleteAll"] == "ok" and seen["afterDeleteAll"] == 0
    assert "404" in seen["deletedLookup"]
