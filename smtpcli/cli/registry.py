"""The command table: name -> (module, one-line help). Modules are imported only when run."""

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
