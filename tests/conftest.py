"""Shared fixtures: loopback SMTP, scripted peer and DNS servers, and test certificates.

Also installs the network guard (tests/guard/sitecustomize.py) in this process and, through
PYTHONPATH, in every Python subprocess the tests start: only loopback may be reached, and the
machine's resolver is never asked.
"""

import importlib.util
import os
from pathlib import Path

_GUARD_DIR = Path(__file__).resolve().parent / "guard"
_spec = importlib.util.spec_from_file_location("smtpcli_test_guard", _GUARD_DIR / "sitecustomize.py")
assert _spec is not None and _spec.loader is not None
_spec.loader.exec_module(importlib.util.module_from_spec(_spec))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(_GUARD_DIR), os.environ.get("PYTHONPATH", "")) if p
)

import pytest  # noqa: E402

from tests.servers.certs import certs, tls_certs  # noqa: E402
from tests.servers.dns_fixture import dns_server  # noqa: E402
from tests.servers.scripted_peer import scripted_peer  # noqa: E402
from tests.servers.smtp_fixture import smtp_server  # noqa: E402

__all__ = ["certs", "cli", "dns_server", "scripted_peer", "smtp_server", "tls_certs"]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run ``smtpcli ARGS...`` in-process: ``cli("send", ...) -> (exit code, stdout, stderr)``."""
    from smtpcli.cli import main as main_module
    from smtpcli.cli.state import STATE

    def run(*args: str) -> tuple[int, str, str]:
        STATE.json = STATE.traceback = False
        with pytest.raises(SystemExit) as exc:
            main_module.main(list(args))
        out, err = capsys.readouterr()
        return int(exc.value.code or 0), out, err

    return run
