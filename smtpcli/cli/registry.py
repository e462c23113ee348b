"""The command table: name -> (module, one-line help). Modules are imported only when run."""

from __future__ import annotations

# No imports here: the console entry reads this table before anything else is loaded (even
# typing, whose import the quick start in entry.py wants to cover).

# Global options that take a value, so that ``--profile send probe`` is read as ``probe``.
GLOBAL_OPTIONS_WITH_VALUE = ("--profile",)

COMMANDS: dict[str, tuple[str, str]] = {
    "send": ("smtpcli.cli.send", "Send a test message (TLS, AUTH, MIME, DKIM, live transcript)."),
    "session": ("smtpcli.cli.session", "Interactive SMTP session with completion and helpers."),
    "probe": ("smtpcli.cli.probe", "Probe a server or a domain's MX: TLS, DANE, MTA-STS, AUTH."),
    "check-domain": ("smtpcli.cli.check_domain", "Check a domain's MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, BIMI."),
    "explain": ("smtpcli.cli.explain", "Explain SMTP reply codes, rejection lines and bounces."),
    "serve": ("smtpcli.cli.serve", "Capture SMTP server for tests and CI, with scripted faults."),
    "mailbox": ("smtpcli.cli.mailbox", "Read what serve --http captured: list, show, wait, clear."),
    "bench": ("smtpcli.cli.bench", "Load-test an SMTP server: messages/s and latency percentiles."),
    "inspect": ("smtpcli.cli.inspect", "Inspect a received message: DKIM, ARC, SPF, DMARC, hops."),
    "dkim": ("smtpcli.cli.dkim", "DKIM keys: generate, sign, verify, check a published key."),
    "demo": ("smtpcli.cli.demo", "Run the main commands against a local server, offline."),
}


def command_word(args: list[str], commands: dict[str, tuple[str, str]]) -> str | None:
    """The subcommand named in ``args`` (the first word that names one), or None."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in GLOBAL_OPTIONS_WITH_VALUE:
            skip = True
        elif arg in commands:
            return arg
    return None
