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

from tests.servers.certs import certs, tls_certs  # noqa: E402
from tests.servers.dns_fixture import dns_server  # noqa: E402
from tests.servers.scripted_peer import scripted_peer  # noqa: E402
from tests.servers.smtp_fixture import smtp_server  # noqa: E402

__all__ = ["certs", "dns_server", "scripted_peer", "smtp_server", "tls_certs"]
