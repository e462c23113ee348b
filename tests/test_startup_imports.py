"""What the common start-up paths import (issue 17): a plain ``send``, ``explain``, ``--help``.

Modules, not timings: each path may import only what it uses. A module that creeps back into
one of these paths (a heavy library, a command's module, a stdlib module only another option
needs) shows up here as a named failure; benchmarks/send.py and startup.py measure the time.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = {"dns", "checkdmarc", "dkim", "aiosmtpd", "cryptography", "prompt_toolkit", "spf",
         "rich", "nacl", "authres", "asyncio", "concurrent"}
# Imported by other options or commands, never by a plain send: MX/--nameserver lookups,
# DKIM signing, explain tables, the JSON/JUnit renderers, click's "did you mean" (difflib),
# shutil (pulls in bz2/lzma/zlib), the idna codec for ASCII names, dataclasses (the records a
# send creates are plain classes: each @dataclass compiled its methods at import, ~0.5 ms a
# class), MIME parts and type guessing (attachments only). (textwrap is not listed: a finding
# longer than the terminal line legitimately needs it.)
NOT_ON_PLAIN_SEND = {
    "smtpcli.dnsq.resolver", "smtpcli.smtp.mx", "smtpcli.smtp.dkimsign", "smtpcli.codes",
    "smtpcli.checks", "smtpcli.render.json_out", "smtpcli.render.junit", "smtpcli.loadgen",
    "smtpcli.server", "smtpcli.session", "difflib", "shutil", "encodings.idna",
    "bz2", "lzma", "zipfile", "tempfile", "subprocess", "json", "dataclasses", "email.mime",
    "mimetypes",
    # Loaded on first use by the console entry's quick start (smtpcli/cli/entry.py): smtplib
    # imports ssl and hmac (each loads OpenSSL: _ssl, _hashlib) but a plain-text send uses
    # neither; random and ipaddress have cheaper stand-ins on this path; tokenize is inspect's.
    "ssl", "_ssl", "hmac", "_hashlib", "random", "ipaddress", "urllib.parse", "tokenize",
    "selectors", "calendar", "array",
}


def _modules_after(argv: list[str]) -> set[str]:
    """The modules loaded after ``smtpcli ARGV`` ran in a fresh interpreter, started as the
    console script starts it (entry.run's quick start), without the fast exit. A module the
    quick start deferred and nothing used is not loaded, so not listed."""
    code = (
        "import sys\n"
        f"sys.argv = {['smtpcli', *argv]!r}\n"
        "from smtpcli.cli import entry\n"
        "from smtpcli.cli.registry import COMMANDS\n"
        "if entry.is_one_shot(sys.argv[1:], COMMANDS):\n    entry.quick_start()\n"
        "from smtpcli.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "modules = sorted(m for m, v in sys.modules.items()\n"
        "                 if not isinstance(v, entry._DeferredModule))\n"
        "import json\n"
        "sys.stderr.write('MODULES ' + json.dumps(modules) + '\\n')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    line = next(x for x in out.stderr.splitlines() if x.startswith("MODULES "))
    return set(json.loads(line[len("MODULES "):]))


def _interpreter_baseline() -> set[str]:
    """Modules loaded before smtpcli runs a line: the interpreter's own start-up, plus what
    the tests' network guard (a sitecustomize, imported by every subprocess) loads."""
    code = ("import sys\nmodules = sorted(sys.modules)\nimport json\n"
            "sys.stderr.write('MODULES ' + json.dumps(modules) + '\\n')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    line = next(x for x in out.stderr.splitlines() if x.startswith("MODULES "))
    return set(json.loads(line[len("MODULES "):]))


def _offending(modules: set[str], banned: set[str]) -> list[str]:
    modules = modules - _interpreter_baseline()
    return sorted(m for m in modules
                  if m.split(".")[0] in banned or any(m == b or m.startswith(b + ".")
                                                      for b in banned))


def test_plain_send_imports_only_its_path(smtp_server) -> None:
    server = smtp_server("plain")
    modules = _modules_after(["send", "-s", f"127.0.0.1:{server.port}", "--tls", "none",
                              "--from", "a@example.test", "--to", "b@example.test"])
    assert len(server.messages) == 1  # the send really ran
    assert _offending(modules, HEAVY | NOT_ON_PLAIN_SEND) == []
    commands = {m for m in modules if m.startswith("smtpcli.cli.")}
    assert commands <= {"smtpcli.cli.entry", "smtpcli.cli.main", "smtpcli.cli.registry",
                        "smtpcli.cli.state",
                        "smtpcli.cli.send", "smtpcli.cli.options", "smtpcli.cli.smtp_options",
                        "smtpcli.cli.secrets"}


def test_help_and_version_import_no_smtpcli_library() -> None:
    for argv in (["--help"], ["--version"]):
        modules = _modules_after(argv)
        ours = sorted(m for m in modules if m.startswith("smtpcli."))
        assert set(ours) <= {"smtpcli.cli", "smtpcli.cli.entry", "smtpcli.cli.main",
                             "smtpcli.cli.registry",
                             "smtpcli.cli.state", "smtpcli.errors", "smtpcli.render",
                             "smtpcli.render.terminal", "smtpcli.interrupt"}, ours
        assert _offending(modules, HEAVY | {"dataclasses", "difflib", "shutil", "logging"}) == []


def test_explain_imports_no_client_or_heavy_module() -> None:
    modules = _modules_after(["explain", "550", "5.7.26"])
    # bounce_text: the MTA bounce layouts (patterns compiled at import) read only bounce
    # texts, never a single reply such as this one.
    assert _offending(modules, HEAVY | {"smtplib", "ssl", "email", "smtpcli.smtp",
                                        "smtpcli.dnsq", "smtpcli.checks", "difflib",
                                        "smtpcli.codes.bounce_text", "dataclasses"}) == []
