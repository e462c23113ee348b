"""``smtpcli probe TARGET``: a server, or every MX and address of a domain."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import click

from smtpcli.cli.options import (
    dns_options,
    finish,
    json_option,
    junit_option,
    strict_option,
    timeout_option,
)
from smtpcli.cli.smtp_options import cafile_option, ehlo_option, port_option

if TYPE_CHECKING:
    from smtpcli.render.style import Painter
    from smtpcli.results import Report


@click.command("probe")
@click.argument("target")
@port_option("Port (for every MX host of a domain; default 25, or the one in TARGET).")
@click.option("--first-only", is_flag=True, help="Probe only the first MX host's first address.")
@click.option("--concurrency", "-c", type=click.IntRange(1, 256), default=16, show_default=True,
              metavar="N", help="How many at once (addresses probed in parallel).")
@cafile_option
@ehlo_option(default_help="this machine's FQDN")
@click.option("--cert-days", type=click.IntRange(0, 3650), default=14, show_default=True,
              help="Warn when the certificate expires within N days.")
@click.option("--expect-capability", "expect", multiple=True, metavar="NAME",
              help="Fail unless the server advertises NAME (repeatable), e.g. PIPELINING.")
@click.option("--save-cert", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write the peer's certificate chain (first address with TLS) as PEM.")
@click.option("--no-tls-versions", is_flag=True, help="Skip the accepted-TLS-versions test.")
@click.option("--no-vrfy", is_flag=True, help="Do not try VRFY/EXPN.")
@click.option("--checks", metavar="LIST",
              help="Also run security probes (off by default): comma-separated relay, enum, "
                   "auth-plain, starttls-injection, smuggling, or all. See the README.")
@click.option("--relay-domain", metavar="DOMAIN", default="example.net", show_default=True,
              help="Outside domain the open-relay probe asks the server to relay to.")
@click.option("--known-user", "known_users", multiple=True, metavar="NAME",
              help="A user that exists, for the enumeration probe (repeatable; default "
                   "postmaster, root, admin).")
@click.option("--smuggling-rcpt", metavar="ADDR",
              help="Recipient of the smuggling probe's test messages (default postmaster@ the "
                   "server's domain).")
@click.option("--reply-wait", type=click.FloatRange(0.05, 60), default=2.0, show_default=True,
              metavar="SECONDS",
              help="How long the smuggling and STARTTLS-injection probes wait for a reply that "
                   "a conforming server does not send (a reply within it counts as at once).")
@click.option("--mta-sts-port", type=click.IntRange(1, 65535), default=443, hidden=True)
@click.option("-4", "ipv4", is_flag=True, help="IPv4 addresses only.")
@click.option("-6", "ipv6", is_flag=True, help="IPv6 addresses only.")
@timeout_option(10.0, "each network step")
@dns_options
@strict_option
@junit_option
@json_option
def command(
    target: str, port: int | None, first_only: bool, concurrency: int, cafile: str | None,
    ehlo_name: str | None, cert_days: int, expect: tuple[str, ...], save_cert: str | None,
    no_tls_versions: bool, no_vrfy: bool, checks: str | None, relay_domain: str,
    known_users: tuple[str, ...], smuggling_rcpt: str | None, reply_wait: float,
    mta_sts_port: int,
    ipv4: bool, ipv6: bool,
    timeout: float, nameservers: tuple[str, ...], dns_retries: int, strict: bool,
    junit_path: str | None, json_mode: bool,
) -> int:
    """Probe a server or a domain's MX: TLS, DANE, MTA-STS, AUTH.

    TARGET is host[:port], [v6]:port, an smtp(s):// URL, or a domain: then every MX host and
    every address of it, concurrently.

    \b
    Examples:
      smtpcli probe example.org
      smtpcli probe mx1.example.org:25 --cert-days 30 --junit probe.xml
      smtpcli probe example.org --expect-capability PIPELINING --strict --json
    """
    from smtpcli.dnsq.resolver import ResolverConfig
    from smtpcli.errors import UsageError
    from smtpcli.probe.run import ProbeOptions, run_probe

    if ipv4 and ipv6:
        raise UsageError("-4 and -6 exclude each other")
    security = None
    if checks:
        from smtpcli.security import SecurityOptions, parse_checks

        parse_checks(checks)  # a typo is a usage error before any traffic
        security = SecurityOptions(
            timeout=timeout, ehlo_name=ehlo_name, relay_domain=relay_domain,
            known_users=known_users or SecurityOptions.known_users, smuggling_rcpt=smuggling_rcpt,
            reply_wait=reply_wait)
    opts = ProbeOptions(
        port=port, timeout=timeout, cafile=cafile, ehlo_name=ehlo_name, first_only=first_only,
        concurrency=concurrency, cert_days=cert_days,
        expect_capabilities=tuple(e.upper() for e in expect),
        tls_versions=not no_tls_versions, vrfy=not no_vrfy, mta_sts_port=mta_sts_port,
        family=4 if ipv4 else 6 if ipv6 else 0,
        resolver=ResolverConfig.from_options(nameservers, timeout, dns_retries),
        checks=checks, security=security,
    )
    report, results = run_probe(target, opts)
    if save_cert:
        chain = next((r.chain for r in results if r.chain), None)
        if chain is None:
            raise UsageError(f"--save-cert {save_cert}: no server presented a certificate")
        _write_pem(save_cert, chain)
        report.facts["saved_cert"] = save_cert
    code = finish(report, json_mode=json_mode, strict=strict, junit_path=junit_path,
                  facts_renderer=_facts_lines)
    if code == 3:
        from smtpcli.probe.run import incomplete_reason

        # The report has the findings; stderr gets the one line saying why it is incomplete.
        click.echo(f"smtpcli: {incomplete_reason(report) or report.summary}", err=True)
    return code


def _write_pem(path: str, chain: list[bytes]) -> None:
    import ssl

    from smtpcli.errors import UsageError

    try:
        with open(path, "w", encoding="ascii") as fh:
            fh.write("".join(ssl.DER_cert_to_PEM_cert(der) for der in chain))
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _facts_lines(report: Report, paint: Painter) -> Iterable[str]:
    """Per address: greeting, timings, TLS and the capabilities, before the findings."""
    for host in report.facts.get("hosts", []):
        addr = host.get("address", "?")
        shown = f"[{addr}]" if ":" in addr else addr
        name = host.get("host")
        where = f"{shown}:{host.get('port')}"
        yield paint(where if name == addr else f"{name} {where}", "bold")
        if host.get("connect_ms") is not None:
            first = (host.get("banner") or "").split("\n", 1)[0]
            yield (f"  connect {host.get('connect_ms')} ms, greeting after "
                   f"{host.get('banner_delay_ms')} ms: {first}")
        tls = host.get("tls")
        if tls:
            yield f"  TLS {tls.get('protocol')} {tls.get('cipher')}, verified={tls.get('verified')}"
            chain = tls.get("chain") or []
            if chain:
                yield f"  certificate {chain[0]['subject']} until {chain[0]['not_after'][:10]}"
        before, after = host.get("ehlo_before_tls"), host.get("ehlo_after_tls")
        if before is not None:
            yield f"  EHLO before TLS: {' '.join(sorted(before)) or '-'}"
        if after is not None:
            yield f"  EHLO after TLS:  {' '.join(sorted(after)) or '-'}"
        versions = host.get("tls_versions")
        if versions:
            yield "  TLS versions: " + ", ".join(f"{v['version']} {v['state']}" for v in versions)
