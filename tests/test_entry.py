"""The console entry's quick start (smtpcli/cli/entry.py) and the send-path stand-ins it relies
on: which runs get it, that a deferred module still works when a path needs it, and that
``is_ip`` and the Message-ID keep the behaviour of what they replace."""

from __future__ import annotations

import ast
import ipaddress
import re
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from smtpcli.cli.entry import is_one_shot
from smtpcli.cli.registry import COMMANDS, command_word
from smtpcli.smtp.message import new_message_id
from smtpcli.smtp.target import is_ip
from smtpcli.smtp.tlsinfo import TlsOptions, make_context


def test_one_shot_runs_are_send_explain_help_and_version() -> None:
    assert is_one_shot(["send", "-s", "h", "-t", "a@b.test"], COMMANDS)
    assert is_one_shot(["explain", "550", "5.7.26"], COMMANDS)
    assert is_one_shot(["--help"], COMMANDS)
    assert is_one_shot(["--version"], COMMANDS)
    assert is_one_shot([], COMMANDS)
    # Long or threaded runs start as before.
    for argv in (["serve"], ["bench", "-s", "h"], ["probe", "h:25"], ["check-domain", "x.test"],
                 ["session", "h"], ["explain", "--mailbox", "Maildir"],
                 ["explain", "--mailbox=box.mbox"]):
        assert not is_one_shot(argv, COMMANDS), argv


def test_command_word_skips_the_value_of_a_global_option() -> None:
    assert command_word(["--profile", "send", "probe", "h:25"], COMMANDS) == "probe"
    assert command_word(["--traceback", "send", "--subject", "serve"], COMMANDS) == "send"
    assert command_word(["--profile", "x"], COMMANDS) is None
    assert not is_one_shot(["--profile", "send", "serve"], COMMANDS)


def _run_entry(argv: list[str], probe: str) -> subprocess.CompletedProcess[str]:
    """``smtpcli ARGV`` started as the console script starts it, then ``probe`` (Python run
    in the same process after the command, with the fast exit bypassed)."""
    code = (
        "import sys\n"
        f"sys.argv = {['smtpcli', *argv]!r}\n"
        "from smtpcli.cli import entry, main\n"
        "from smtpcli.cli.registry import COMMANDS\n"
        "if entry.is_one_shot(sys.argv[1:], COMMANDS):\n    entry.quick_start()\n"
        "try:\n    main.main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        f"{probe}\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)


def test_a_deferred_module_loads_when_a_path_uses_it(smtp_server) -> None:
    """STARTTLS and AUTH CRAM-MD5 use the ssl and hmac that the quick start deferred."""
    server = smtp_server("starttls", users={"alice": "secret"})
    out = _run_entry(
        ["send", "-s", f"127.0.0.1:{server.port}", "--tls", "starttls", "--insecure",
         "-u", "alice", "--password", "secret", "--auth", "CRAM-MD5",
         "--from", "a@example.test", "--to", "b@example.test"],
        "import gc, types\n"
        "print('EXIT', code, type(sys.modules['ssl']) is types.ModuleType,\n"
        "      type(sys.modules['hmac']) is types.ModuleType, gc.isenabled())\n")
    assert "EXIT 0 True True False" in out.stdout, out.stdout + out.stderr
    assert len(server.messages) == 1


def test_long_runs_keep_the_collector_and_eager_modules() -> None:
    out = _run_entry(["explain", "--mailbox", "/nonexistent-smtpcli-box"],
                     "import gc\nfrom smtpcli.cli.entry import _DeferredModule\n"
                     "print('STATE', code, gc.isenabled(),\n"
                     "      any(isinstance(m, _DeferredModule) for m in sys.modules.values()))\n")
    assert "STATE 2 True False" in out.stdout or "STATE 3 True False" in out.stdout, \
        out.stdout + out.stderr


@given(st.text(alphabet="0123456789.:abcdef%-x ", max_size=20))
def test_is_ip_agrees_with_ipaddress(text: str) -> None:
    try:
        ipaddress.ip_address(text)
        expected = True
    except ValueError:
        expected = False
    assert is_ip(text) is expected


def test_is_ip_edge_cases() -> None:
    for text in ("127.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "fe80::1%eth0", "2001:db8::"):
        assert is_ip(text), text
    for text in ("01.2.3.4", "1.2.3", "256.1.1.1", "1.2.3.4 ", "", "1.2.3.4\x00",
                 "\u0661.\u0662.\u0663.\u0664", "mail.example.test", "1.2.3.4.5"):
        assert not is_ip(text), text


def test_message_ids_are_unique_and_well_formed() -> None:
    ids = {new_message_id("example.test") for _ in range(1000)}
    assert len(ids) == 1000
    for mid in list(ids)[:20]:
        assert re.fullmatch(r"<\d+\.\d+\.\d+\.smtpcli@example\.test>", mid), mid


def test_an_unverifying_context_skips_the_system_store_but_keeps_a_given_cafile(tls_certs) -> None:
    cafile = tls_certs.ca_path
    insecure = make_context(TlsOptions(verify=False))
    assert insecure.cert_store_stats()["x509_ca"] == 0
    assert insecure.verify_mode.name == "CERT_NONE" and not insecure.check_hostname
    with_ca = make_context(TlsOptions(verify=False, cafile=str(cafile)))
    assert with_ca.cert_store_stats()["x509_ca"] == 1
    verifying = make_context(TlsOptions(verify=True))
    assert verifying.verify_mode.name == "CERT_REQUIRED" and verifying.check_hostname


def test_the_entry_loads_nothing_before_the_quick_start() -> None:
    """The collector goes off before typing, click and the rest are imported (all of
    start-up); importing the entry itself must not pull them in."""
    code = ("import sys\nbefore = set(sys.modules)\nimport smtpcli.cli.entry\n"
            "print(sorted(set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    loaded = set(ast.literal_eval(out.stdout))
    assert loaded <= {"smtpcli", "smtpcli.cli", "smtpcli.cli.entry", "smtpcli.cli.registry",
                      "__future__", "types"}, loaded


def test_every_unverifying_client_context_skips_the_system_store(tmp_path, monkeypatch) -> None:
    """send --insecure, bench --insecure, the security probes and the version probes share one
    unverifying context: none loads the system trust store; SSLKEYLOGFILE is honoured as
    create_default_context honours it."""
    from smtpcli.loadgen.generator import client_context
    from smtpcli.probe.tlsversions import pinned_context
    from smtpcli.smtp.tlsinfo import unverified_context

    keylog = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    for ctx in (unverified_context(), client_context(None, True), pinned_context("1.2")):
        assert ctx.cert_store_stats()["x509_ca"] == 0
        assert ctx.verify_mode.name == "CERT_NONE" and not ctx.check_hostname
        assert ctx.keylog_filename == str(keylog)
    assert client_context(None, False).verify_mode.name == "CERT_REQUIRED"
