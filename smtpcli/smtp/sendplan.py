"""From ``send`` options to a checked plan (no traffic), and from a plan to a Report.

``build_plan`` validates everything the user typed (addresses, files, target, TLS mode, ESMTP
parameters) and raises ``UsageError`` (exit 2) before any connection. ``execute`` resolves MX
hosts when there is no ``--server``, runs the delivery and builds the Report.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from email.utils import getaddresses
from typing import TYPE_CHECKING, Any

from smtpcli.errors import SmtpcliError, UsageError
from smtpcli.records import Record
from smtpcli.results import Report
from smtpcli.smtp.auth import Credentials, read_secret_file, token_from_command
from smtpcli.smtp.connection import ConnectOptions
from smtpcli.smtp.delivery import SendRequest, deliver
from smtpcli.smtp.message import (
    BuiltMessage,
    MessageSpec,
    build_message,
    check_address,
    load_message,
    parse_header_option,
)
from smtpcli.smtp.target import (
    Target,
    TlsMode,
    default_tls_mode,
    loopback_addresses,
    parse_target,
)
from smtpcli.smtp.tlsinfo import TlsOptions, make_context
from smtpcli.smtp.transaction import Envelope, TransactionOptions, check_param
from smtpcli.smtp.transcript import Listener, Transcript

if TYPE_CHECKING:
    from smtpcli.dnsq.resolver import ResolverConfig

DSN_NOTIFY = {"NEVER", "SUCCESS", "FAILURE", "DELAY"}


class SendArgs:
    """The ``send`` options, as click hands them over: ``SendArgs(server=..., to=(...))``.

    A plain class with class-level defaults, not a dataclass: generating ``__init__``,
    ``__repr__`` and ``__eq__`` for 50 fields cost every ``smtpcli send`` a millisecond at
    start-up, for methods nothing uses."""

    server: str | None = None
    port: int | None = None
    tls_mode: str | None = None
    family: int | None = None
    source_address: str | None = None
    ehlo_name: str | None = None
    cafile: str | None = None
    insecure: bool = False
    tls_verify: bool = False
    sni: str | None = None
    tls_min_version: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    user: str | None = None
    auth_mech: str | None = None
    password_file: str | None = None
    password: str | None = None
    oauth_token_file: str | None = None
    oauth_token_cmd: str | None = None
    show_secrets: bool = False
    from_: str | None = None
    mail_from: str | None = None
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    subject: str | None = None
    body: str | None = None
    html: str | None = None
    attach: tuple[str, ...] = ()
    inline: tuple[str, ...] = ()
    charset: str = "utf-8"
    eight_bit: bool = False
    data_file: str | None = None
    dkim_key: str | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    pipelining: bool = True
    bdat: bool = False
    chunk_size: int = 0
    dsn_notify: str | None = None
    dsn_ret: str | None = None
    envid: str | None = None
    requiretls: bool = False
    mail_param: tuple[str, ...] = ()
    rcpt_param: tuple[str, ...] = ()
    quit_after: str | None = None
    dry_run: bool = False
    allow_partial: bool = False
    timeout: float = 10.0
    nameservers: tuple[str, ...] = ()
    dns_retries: int = 1
    extra: dict[str, Any]

    def __init__(self, **options: Any) -> None:
        unknown = options.keys() - _SEND_ARG_NAMES
        if unknown:
            raise TypeError(f"unknown send options: {', '.join(sorted(unknown))}")
        self.extra = {}
        self.__dict__.update(options)


_SEND_ARG_NAMES = frozenset(SendArgs.__annotations__)


class SendPlan(Record):
    """A checked send: the request (targets filled in by ``execute`` for direct delivery)."""

    __slots__ = ("request", "message", "direct_domain", "resolver", "allow_partial", "insecure",
                 "port", "tls_mode", "opportunistic")

    def __init__(self, request: SendRequest, message: BuiltMessage | None,
                 direct_domain: str | None, resolver: ResolverConfig | None,
                 allow_partial: bool, insecure: bool, port: int | None = None,
                 tls_mode: TlsMode | None = None, opportunistic: bool = False) -> None:
        self.request = request
        self.message = message
        self.direct_domain = direct_domain
        # None: --server without --nameserver (no lookup of ours)
        self.resolver = resolver
        self.allow_partial = allow_partial
        self.insecure = insecure
        self.port = port
        self.tls_mode = tls_mode
        # direct to MX, certificate not verified (as MTAs deliver)
        self.opportunistic = opportunistic

    @property
    def credentials(self) -> Credentials | None:
        return self.request.credentials

    @property
    def content(self) -> bytes | None:
        return self.request.content

    @property
    def target_text(self) -> str:
        if self.request.targets:
            return self.request.targets[0].display
        return f"MX of {self.direct_domain}"

    def envelope_facts(self) -> dict[str, Any]:
        env = self.request.envelope
        return {"mail_from": env.mail_from, "recipients": list(env.recipients)}

    def message_facts(self) -> dict[str, Any] | None:
        return self.message.to_dict() if self.message else None

    def dry_run_facts(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"envelope": self.envelope_facts(), "message": self.message_facts()}
        if self.request.targets:
            facts["target"] = self.request.targets[0].to_dict()
        else:
            facts["direct_domain"] = self.direct_domain
        if self.message is not None:
            facts["message"]["data"] = self.message.data.decode("utf-8", "replace")
        return facts


def _addresses(values: tuple[str, ...], what: str) -> list[str]:
    out = []
    for value in values:
        for _, addr in getaddresses([value]) or [("", value)]:
            out.append(check_address(addr or value, what))
    return out


def _read_data(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read message file {path}: {exc.strerror or exc}") from None


def _credentials(a: SendArgs) -> Credentials | None:
    if not a.user:
        if a.auth_mech and a.auth_mech.lower() != "none":
            raise UsageError("--auth needs --user")
        return None
    if a.oauth_token_file and a.oauth_token_cmd:
        raise UsageError("give --oauth-token-file or --oauth-token-cmd, not both")
    token = None
    if a.oauth_token_file:
        token = read_secret_file(a.oauth_token_file, "token")
    elif a.oauth_token_cmd:
        token = token_from_command(a.oauth_token_cmd, timeout=max(a.timeout, 30.0))
    # The password itself is filled in later (it may need a prompt, which is the CLI's job).
    return Credentials(a.user, None, token)


def build_plan(a: SendArgs, *, read_text: Callable[[str, str], str]) -> SendPlan:
    """Check the options and build the message; raises UsageError on bad input."""
    if not a.to and not a.cc and not a.bcc:
        raise UsageError("no recipient: give --to (or --cc/--bcc)")
    if a.from_ is None and a.mail_from is None:
        raise UsageError("no sender: give --from (or --mail-from)")
    if a.dkim_key and not a.dkim_selector:
        raise UsageError("--dkim-key needs --dkim-selector")
    if a.dsn_notify:
        parts = {p.strip().upper() for p in a.dsn_notify.split(",")}
        if not parts <= DSN_NOTIFY or ("NEVER" in parts and len(parts) > 1):
            raise UsageError(f"invalid --dsn-notify {a.dsn_notify!r}: NEVER, or a list of "
                             "SUCCESS, FAILURE, DELAY (RFC 3461 4.1)")
    for p in a.mail_param:
        check_param(p, "--mail-param")
    for p in a.rcpt_param:
        check_param(p, "--rcpt-param")
    headers = [parse_header_option(h) for h in a.headers]
    to = _addresses(a.to, "--to")
    cc = _addresses(a.cc, "--cc")
    bcc = _addresses(a.bcc, "--bcc")
    mail_from = (
        check_address(a.mail_from, "--mail-from", allow_empty=True) if a.mail_from is not None
        else check_address(getaddresses([a.from_ or ""])[0][1] or (a.from_ or ""), "--from")
    )
    recipients = tuple(dict.fromkeys(to + cc + bcc))
    message: BuiltMessage | None = None
    if a.quit_after not in ("connect", "banner", "ehlo", "tls", "auth", "mail", "rcpt"):
        message = _message(a, headers, mail_from, read_text)
    tls_mode = TlsMode.parse(a.tls_mode) if a.tls_mode else None
    targets: list[Target] = []
    direct: str | None = None
    if a.server:
        targets = [parse_target(a.server, tls=tls_mode, port=a.port)]
    else:
        domains = {r.rsplit("@", 1)[1].lower() for r in recipients}
        if len(domains) > 1:
            raise UsageError(
                "direct delivery (no --server) takes recipients of one domain per run; "
                f"got {', '.join(sorted(domains))}"
            )
        direct = domains.pop()
    if a.tls_verify and a.insecure:
        raise UsageError("--tls-verify and --insecure contradict each other: give one")
    # Straight to the MX, TLS is opportunistic as MTAs do it (RFC 7435; Postfix's "may"): a
    # certificate that does not verify still encrypts, and the report warns. --tls-verify, or
    # asking for TLS outright with --tls starttls/implicit, makes verification count.
    opportunistic = direct is not None and not a.tls_verify and not a.insecure and \
        tls_mode in (None, TlsMode.OPPORTUNISTIC)
    tls = TlsOptions(
        verify=not a.insecure and not opportunistic, cafile=a.cafile, sni=a.sni,
        min_version=a.tls_min_version, client_cert=a.client_cert, client_key=a.client_key,
        unverified_because="opportunistic TLS to the MX; --tls-verify to require it"
        if opportunistic else "--insecure",
    )
    if a.client_cert or a.cafile or a.tls_min_version:
        make_context(tls)  # a bad file or version is a usage error before any traffic
    connect = ConnectOptions(
        timeout=a.timeout, ehlo_name=a.ehlo_name, tls=tls, family=a.family or 0,
        source_address=a.source_address, show_secrets=a.show_secrets,
    )
    topts = TransactionOptions(
        pipelining=a.pipelining, bdat=a.bdat, chunk_size=a.chunk_size,
        dsn_notify=a.dsn_notify.upper() if a.dsn_notify else None,
        dsn_ret=a.dsn_ret, envid=a.envid, requiretls=a.requiretls,
        mail_params=tuple(a.mail_param), rcpt_params=tuple(a.rcpt_param),
    )
    request = SendRequest(
        targets=targets, envelope=Envelope(mail_from, recipients),
        content=message.data if message else None, connect=connect, transaction=topts,
        credentials=_credentials(a),
        auth_mechanism=a.auth_mech, quit_after=a.quit_after, fallback=direct is not None,
        eight_bit=message.eight_bit if message else False,
        smtputf8=message.smtputf8 if message else False,
    )
    resolver = None
    if direct is not None or a.nameservers:
        from smtpcli.dnsq.resolver import ResolverConfig

        resolver = ResolverConfig.from_options(a.nameservers, min(a.timeout, 5.0), a.dns_retries)
    return SendPlan(request, message, direct, resolver, a.allow_partial, a.insecure,
                    port=a.port, tls_mode=tls_mode, opportunistic=opportunistic)


def _message(
    a: SendArgs, headers: list[tuple[str, str]], mail_from: str,
    read_text: Callable[[str, str], str],
) -> BuiltMessage:
    if a.data_file:
        if a.body or a.html or a.attach or a.inline or a.subject:
            raise UsageError("--data sends a ready message: drop --body/--html/--attach/--subject")
        message = load_message(_read_data(a.data_file), headers)
    else:
        spec = MessageSpec(
            from_header=a.from_ or mail_from, to=list(a.to), cc=list(a.cc), subject=a.subject,
            body=read_text(a.body, "body") if a.body is not None else None,
            html=read_text(a.html, "HTML") if a.html is not None else None,
            attachments=list(a.attach), inline=list(a.inline), headers=headers,
            charset=a.charset, eight_bit=a.eight_bit, server=a.server,
        )
        message = build_message(spec)
    if a.dkim_key:
        from smtpcli.smtp.dkimsign import DkimOptions, sign

        domain = a.dkim_domain or (a.from_ and getaddresses([a.from_])[0][1].rsplit("@", 1)[-1]) \
            or mail_from.rsplit("@", 1)[-1]
        data = sign(message.data, DkimOptions(a.dkim_key, a.dkim_selector or "", domain))
        message = message.replace(data=data)
    return message


def with_password(plan: SendPlan, password: str) -> SendPlan:
    creds = plan.request.credentials
    assert creds is not None
    request = plan.request.replace(credentials=Credentials(creds.user, password, creds.token))
    return plan.replace(request=request)


def execute(plan: SendPlan, listener: Listener | None = None) -> tuple[Report, SmtpcliError | None]:
    """Resolve (direct delivery), deliver, report. Peer problems come back as the error."""
    transcript = Transcript(redact_secrets=not plan.request.connect.show_secrets)
    if listener is not None:
        transcript.listeners.append(listener)
    request = plan.request
    mx_facts: list[dict[str, Any]] | None = None
    try:
        if plan.direct_domain is not None:
            from smtpcli.smtp.mx import resolve_mx

            assert plan.resolver is not None  # built for direct delivery

            hosts = resolve_mx(plan.direct_domain, plan.resolver, family=request.connect.family)
            mx_facts = [h.to_dict() for h in hosts]
            port = plan.port or 25
            mode = plan.tls_mode or default_tls_mode(port)
            targets = [Target(h.host, port, mode, tuple(h.addresses), given=h.host)
                       for h in hosts if h.addresses]
            for h in hosts:
                transcript.info(f"MX {h.preference} {h.host}: {', '.join(h.addresses) or h.error}")
            request = request.replace(targets=targets)
        elif plan.resolver is not None and plan.resolver.nameservers and not request.targets[0].is_ip \
                and loopback_addresses(request.targets[0].host) is None:
            # --nameserver given: the server's name is resolved there too (DESIGN.md).
            from smtpcli.smtp.mx import resolve_host

            target = request.targets[0]
            addresses = resolve_host(target.host, plan.resolver, family=request.connect.family)
            request = request.replace(targets=[target.with_addresses(addresses)])
    except SmtpcliError as exc:
        if isinstance(exc, UsageError):
            raise
        from smtpcli.smtp.delivery import SendOutcome

        outcome = SendOutcome(transcript=transcript, error=exc, error_stage="dns")
        report = _report(plan, outcome, mx_facts)
        report.target = plan.target_text
        return report, exc
    outcome = deliver(request, transcript)
    return _report(plan, outcome, mx_facts), outcome.error


def _report(plan: SendPlan, outcome: Any, mx: list[dict[str, Any]] | None) -> Report:
    from smtpcli.smtp.report import build_report

    return build_report(
        outcome, allow_partial=plan.allow_partial, insecure=plan.insecure,
        opportunistic=plan.opportunistic,
        message=plan.message_facts(), envelope=plan.envelope_facts(), mx=mx,
    )
