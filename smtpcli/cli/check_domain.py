"""`smtpcli check-domain`: every mail DNS record of one or many domains, with rule ids."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from smtpcli.cli.options import (
    dns_options,
    json_option,
    junit_option,
    strict_option,
    timeout_option,
)
from smtpcli.cli.smtp_options import CAFILE_HELP
from smtpcli.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import TextIO

    from smtpcli.dnsq.client import DnsClient

def _identity_domain(sender: str | None, helo: str | None) -> str:
    """The domain check_host() starts from (RFC 7208 2.3, 2.4)."""
    address = (sender or "").strip().strip("<>").strip()
    if "@" in address:
        return address.rpartition("@")[2].rstrip(".").lower()
    return (address or helo or "").rstrip(".").lower()


def _read_domains(domains: tuple[str, ...], from_file: str | None) -> Iterator[str]:
    """The names given (arguments, '-' for stdin, --from-file), without blank lines and
    comments, one at a time: normalize_names keeps only the result, so the raw lines of a list
    of 100,000 names never exist all at once (issue 17: they doubled its memory). The file is
    opened here, so that a missing one is refused before anything is read."""
    fh = None
    if from_file:
        try:
            fh = open(from_file, encoding="utf-8")  # noqa: SIM115 (closed by _names at its end)
        except OSError as exc:
            raise UsageError(f"cannot read {from_file}: {exc.strerror}") from None
    return _names(domains, fh, from_file)


def _names(domains: tuple[str, ...], fh: TextIO | None, from_file: str | None) -> Iterator[str]:
    for d in domains:
        if d == "-":
            yield from _lines(sys.stdin)
        else:
            yield d
    if fh is not None:
        with fh:
            try:
                yield from _lines(fh)
            except OSError as exc:
                raise UsageError(f"cannot read {from_file}: {exc.strerror}") from None


def _lines(fh: Iterable[str]) -> Iterator[str]:
    for ln in fh:
        ln = ln.strip()
        if ln and not ln.startswith("#"):
            yield ln


@click.command("check-domain")
@click.argument("domains", nargs=-1, metavar="DOMAIN...")
@click.option("--from-file", metavar="FILE", help="Read domains from FILE, one a line.")
@click.option("--dkim-selector", "selectors", multiple=True, metavar="S",
              help="Also check DKIM selector S (repeatable).")
@click.option("--no-common-selectors", is_flag=True,
              help="Probe only the --dkim-selector names, not the 16 common ones (those "
                   "probes are about half of a domain's DNS questions and of a batch's time).")
@click.option("--dnsbl", "dnsbl_zones", multiple=True, metavar="ZONE",
              help="Blocklist zone to check MX addresses in (repeatable; replaces the default set).")
@click.option("--no-dnsbl", is_flag=True, help="Skip the blocklist checks.")
@click.option("--ip", metavar="ADDR",
              help="Evaluate SPF (RFC 7208) for mail from this address; with --sender and/or "
                   "--helo, DOMAIN may be left out.")
@click.option("--sender", metavar="ADDR",
              help="MAIL FROM identity for --ip ('' for a null sender; default "
                   "postmaster@DOMAIN).")
@click.option("--helo", metavar="NAME",
              help="HELO identity for --ip, evaluated on its own too (RFC 7208 2.3).")
@click.option("--record", metavar="TEXT",
              help="Lint one record text (SPF, DMARC, DKIM, TLS-RPT, BIMI) before publishing it.")
@click.option("--zone-file", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="Answer names inside this zone from FILE instead of DNS.")
@click.option("--offline", is_flag=True,
              help="With --zone-file: never ask DNS (names outside the zone fail).")
@click.option("--only", "only", multiple=True, metavar="FAMILY",
              help="Run only these families (mx, spf, dmarc, dkim, mta-sts, tlsrpt, bimi, "
                   "dnssec, dnsbl, dns); repeatable.")
@click.option("--cafile", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help=CAFILE_HELP[:-1] + " (for the MTA-STS policy fetch).")
@click.option("--mta-sts-port", type=click.IntRange(1, 65535), default=443, hidden=True,
              envvar="SMTPCLI_MTA_STS_PORT", help="HTTPS port of the MTA-STS host (for tests).")
@click.option("--concurrency", "-c", type=click.IntRange(1, 1000), default=20, show_default=True,
              metavar="N", help="How many at once (domains checked in parallel).")
@click.option("--quiet", "-q", is_flag=True, help="Text mode: hide ok findings.")
@click.option("--resume", metavar="FILE",
              help="With --json and many domains: skip the domains FILE (JSON Lines of an "
                   "earlier run, usually the file this run appends to) already has a result "
                   "for.")
@dns_options
@timeout_option(5.0, "each DNS question and the MTA-STS fetch")
@strict_option
@junit_option
@json_option
def command(domains: tuple[str, ...], from_file: str | None, selectors: tuple[str, ...],
            no_common_selectors: bool, dnsbl_zones: tuple[str, ...], no_dnsbl: bool,
            ip: str | None, sender: str | None, helo: str | None, record: str | None,
            zone_file: str | None, offline: bool, only: tuple[str, ...], cafile: str | None,
            mta_sts_port: int, concurrency: int, quiet: bool, resume: str | None,
            nameservers: tuple[str, ...],
            dns_retries: int, timeout: float, strict: bool, junit_path: str | None,
            json_mode: bool) -> int:
    """Check a domain's MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, BIMI.

    Also DNSSEC and blocklists. Several domains (or '-' for stdin, --from-file) are checked
    concurrently; --json then prints JSON Lines, each written as it is ready, in flat memory
    (--resume FILE goes on with an interrupted scan). Exit: 3 if any lookup failed, else 1 if
    any check failed (or warned with --strict), else 0.

    \b
    Examples:
      smtpcli check-domain example.com
      smtpcli check-domain example.com --dkim-selector s1 --strict --junit dns.xml
      smtpcli check-domain --from-file list.txt --json --resume s.jsonl >> s.jsonl
      smtpcli check-domain example.com --record 'v=spf1 mx -all'
    """
    import asyncio
    import ipaddress

    from smtpcli.checks.common import DEFAULT_DNSBL, CheckOptions
    from smtpcli.checks.domain import FAMILIES, check_domain_within, worst_exit
    from smtpcli.dnsq.resolver import ResolverConfig

    config = ResolverConfig.from_options(nameservers, timeout, dns_retries)
    unknown = sorted(set(only) - set(FAMILIES))
    if unknown:
        raise UsageError(f"unknown --only family: {', '.join(unknown)}",
                         hint="choose from " + ", ".join(FAMILIES))
    if offline and not zone_file:
        raise UsageError("--offline needs --zone-file")
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise UsageError(f"--ip {ip!r} is not an IP address") from None
    from smtpcli.cli.domain_input import normalize_names

    names, refused = normalize_names(_read_domains(domains, from_file))  # refused: 2 or 0
    if ip and not names and record is None and zone_file is None and (
            sender is not None or helo):
        # SPF evaluation alone: the domain is the MAIL FROM identity's, else the HELO's.
        from smtpcli.checks.spf import valid_domain

        names = [_identity_domain(sender, helo)]
        if not valid_domain(names[0]):
            only = ("spf",)  # RFC 7208 4.3: result none; nothing else to look up
    if sender is not None and not sender.strip("<> ") and not helo:
        raise UsageError("a null --sender needs --helo (RFC 7208 2.4: postmaster@HELO is "
                         "checked)")
    zone = None
    if zone_file:
        from smtpcli.dnsq.zonefile import load_zone_file

        zone = load_zone_file(zone_file)
        if not names:
            names = [str(zone.origin).rstrip(".").lower()]
    if not names and record is None:
        if refused:
            return refused  # every line was refused, each with its own line on stderr
        raise UsageError("give a domain to check", hint="smtpcli check-domain example.com")
    if record is not None and len(names) > 1:
        raise UsageError("--record checks one record: give at most one domain")
    opts = CheckOptions(
        dkim_selectors=selectors, probe_common_selectors=not no_common_selectors,
        dnsbl_zones=() if (no_dnsbl or offline) else (dnsbl_zones or DEFAULT_DNSBL),
        ip=ip, sender=sender, helo=helo, cafile=cafile, mta_sts_port=mta_sts_port,
        timeout=timeout, check_ptr=not offline,
    )
    families = tuple(only) or FAMILIES

    shared: list[DnsClient] = []

    def make_client() -> DnsClient:
        # One client (one cache) per run: domains sharing MX hosts or SPF includes ask once.
        if not shared:
            if zone is not None:
                from smtpcli.dnsq.zonefile import ZoneDnsClient

                shared.append(ZoneDnsClient(zone, config, offline=offline))
            else:
                from smtpcli.dnsq.limited import LimitedDnsClient

                shared.append(LimitedDnsClient(config))
        return shared[0]

    # A whole domain may chain several dependent lookups (SPF includes, MX -> A -> PTR -> A);
    # bound it so nothing hangs far past --timeout.
    deadline = timeout * (dns_retries + 1) * 4 + 5

    if record is not None:
        from smtpcli.checks.domain import check_record

        results = [asyncio.run(check_record(record, names[0] if names else None, make_client(),
                                            opts))]
    elif len(names) == 1 and not refused and resume is None:
        # refused lines make it a batch, so JSON Lines throughout
        results = [asyncio.run(check_domain_within(names[0], make_client(), opts, families,
                                                   deadline))]
    else:
        from smtpcli.cli.domain_batch import run_batch

        return max(refused, run_batch(names, make_client, opts, families, concurrency, deadline,
                                      json_mode=json_mode, strict=strict, junit_path=junit_path,
                                      quiet=quiet, resume=resume))
    result = results[0]
    code = worst_exit([result.report], strict)
    result.report.exit_code = code
    if junit_path:
        from smtpcli.render.junit import write_junit

        write_junit(junit_path, [result.report], strict=strict)
    if json_mode:
        from smtpcli.render.json_out import render_json

        render_json(result.report)
    else:
        from smtpcli.render.domain import render_domain
        from smtpcli.render.style import Painter

        paint = Painter.for_stream(sys.stdout)

        sys.stdout.write(render_domain(result, paint, show_ok=not quiet))
        sys.stdout.flush()
    return max(code, refused)
