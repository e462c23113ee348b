"""Shared fixtures: loopback SMTP, scripted peer and DNS servers, and test certificates.

Also installs the network guard (tests/guard/sitecustomize.py) in this process and, through
PYTHONPATH, in every Python subprocess the tests start: only loopback may be reached, and the
machine's resolver is never asked.
"""

import importlib.util
import os
import sys
from pathlib import Path

# --- issue 11b: compiled bytecode is cached even under PYTHONDONTWRITEBYTECODE --------------
# With the variable set (some images set it globally), every run recompiled smtpcli and the
# tests from source: ~2.7 s of CPU per xdist worker for collection alone, and again in every
# `smtpcli` subprocess. Cache it outside the tree instead (PEP 3147 pycache_prefix, gitignored
# .pytest_cache/), for this process, the workers and every Python subprocess they start.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
    _PYCACHE = Path(__file__).resolve().parent.parent / ".pytest_cache" / "pycache"
    os.environ.setdefault("PYTHONPYCACHEPREFIX", str(_PYCACHE))
    sys.pycache_prefix = os.environ["PYTHONPYCACHEPREFIX"]
    sys.dont_write_bytecode = False
# --- end issue 11b ---------------------------------------------------------------------------

_GUARD_DIR = Path(__file__).resolve().parent / "guard"
_spec = importlib.util.spec_from_file_location("smtpcli_test_guard", _GUARD_DIR / "sitecustomize.py")
assert _spec is not None and _spec.loader is not None
_spec.loader.exec_module(importlib.util.module_from_spec(_spec))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(_GUARD_DIR), os.environ.get("PYTHONPATH", "")) if p
)

import pytest  # noqa: E402
from hypothesis import settings as _hypothesis_settings  # noqa: E402

# --- issue 11b: one example budget for every property test -----------------------------------
# The property tests name no max_examples of their own (except where fewer are needed), so the
# profile decides: Hypothesis' own default of 100 per property in the everyday suite; a deeper
# search with HYPOTHESIS_PROFILE=thorough (1,000 each), e.g. before a release.
_hypothesis_settings.register_profile("default", max_examples=100)
_hypothesis_settings.register_profile("thorough", max_examples=1000)
_hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
# --- end issue 11b ---------------------------------------------------------------------------

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


# --- issue 11: xdist_group marks on pytest >= 9.2 (docs/development.md) ---------------------
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep ``--dist loadgroup`` grouping: pytest-xdist marks a grouped test by an ``@group``
    suffix on its node id, written where pytest 9.2 no longer reads it, so the groups were
    silently ignored (pytest-xdist issue 1386). Add the suffix where pytest keeps the id; a
    no-op outside a loadgroup worker, and once xdist's own suffix is there.

    Also puts the grouped tests first. Each group runs on one worker, one test after another,
    and the groups are the tests that mostly wait on real servers (the mail-server lab,
    Postfix's smuggling runs): started last, they would end the run long after the other
    workers are idle; started first, the other workers fill the time around them."""
    items.sort(key=lambda item: 0 if any(item.iter_markers("xdist_group")) else 1)
    if not getattr(config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import coerce_node_id
    except ImportError:  # pytest < 9.2: xdist's own suffix works
        return
    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        suffix = "@" + "_".join(names)
        if names and not item.nodeid.endswith(suffix) and hasattr(item, "_id"):
            item._id = coerce_node_id(item.nodeid + suffix)  # type: ignore[attr-defined]
# --- end issue 11 ----------------------------------------------------------------------------

