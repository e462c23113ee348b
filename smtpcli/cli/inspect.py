"""``smtpcli inspect FILE|-``: what a received message proves (DKIM, ARC, SPF, DMARC, hops)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

import click

from smtpcli.cli.options import dns_options, finish, json_option, strict_option, timeout_option
from smtpcli.errors import UsageError
from smtpcli.results import Report

if TYPE_CHECKING:
    from smtpcli.render.style import Painter

MAX_SIZE = 64 * 1024 * 1024


def read_message(path: str) -> bytes:
    """The message bytes from a file or '-' (stdin); unreadable input is a usage error (exit 2)."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_SIZE + 1)
        else:
            with open(path, "rb") as fh:
                data = fh.read(MAX_SIZE + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_SIZE:
        raise UsageError(f"{path} is larger than {MAX_SIZE // (1024 * 1024)} MiB")
    return data


def render_facts(report: Report, paint: Painter) -> Iterable[str]:
    """Message, Received hops and signatures above the findings."""
    facts = report.facts
    msg = facts.get("message", {})
    yield paint("Message", "bold")
    for key in ("from", "subject", "date", "message_id", "return_path"):
        if msg.get(key):
            yield f"  {key.replace('_', '-'):<12} {msg[key]}"
    from smtpcli.durations import hop_delay, human_duration

    hops = facts.get("received", {}).get("hops", [])
    entering = facts.get("received", {}).get("entering_hop")
    if hops:
        yield paint("Received (oldest first)", "bold")
        for n, hop in enumerate(hops):
            delay = hop.get("delay_seconds")
            mark = " <- entered here" if n == entering else ""
            yield (f"  {n + 1:>2}. {hop.get('from') or '?'} [{hop.get('from_ip') or '?'}] -> "
                   f"{hop.get('by') or '?'} with {hop.get('with') or '?'}"
                   f"{' TLS' if hop.get('tls') else ''}"
                   f"{'' if delay is None else ' ' + hop_delay(delay)}{mark}")
        total = facts.get("received", {}).get("total_transit_seconds")
        if total is not None:
            sign = "-" if total < 0 else ""
            yield f"  total transit {sign}{human_duration(total)}"
    sigs = facts.get("dkim", [])
    if sigs:
        yield paint("DKIM signatures", "bold")
        for s in sigs:
            bits = f" {s['key_bits']}-bit" if s.get("key_bits") else ""
            yield (f"  d={s.get('domain')} s={s.get('selector')} a={s.get('algorithm')}{bits}: "
                   f"{s.get('result')} ({s.get('reason')}) h={':'.join(s.get('signed_headers'))}")


@click.command("inspect")
@click.argument("file", metavar="FILE.eml|-")
@click.option("--offline", is_flag=True,
              help="Make no DNS lookups; DKIM, ARC, SPF and DMARC are then reported unknown.")
@click.option("--ip", metavar="IP", help="Evaluate SPF for this IP instead of the entering hop's.")
@click.option("--sender", metavar="ADDR",
              help="Envelope sender for SPF instead of Return-Path ('' for the null sender).")
@click.option("--helo", metavar="NAME", help="HELO name for SPF (default: from the entering hop).")
@dns_options
@timeout_option(5.0, "each DNS lookup")
@strict_option
@json_option
def command(file: str, offline: bool, ip: str | None, sender: str | None, helo: str | None,
            nameservers: tuple[str, ...], dns_retries: int, timeout: float, strict: bool,
            json_mode: bool) -> int:
    """Inspect a received message: DKIM, ARC, SPF, DMARC, hops.

    Why did it land in spam? Parses FILE (or stdin with '-') tolerantly, walks the Received
    chain, verifies every DKIM-Signature and the ARC chain, evaluates SPF for the IP the message
    entered from and DMARC alignment, and compares all of it with the message's
    Authentication-Results. Exit: 0 everything passes, 1 a check failed, 2 unreadable file,
    3 lookups failed.

    \b
    Examples:
      smtpcli inspect message.eml
      smtpcli inspect message.eml --ip 192.0.2.7 --json
      smtpcli inspect --offline - < message.eml
    """
    import ipaddress

    from smtpcli.dnsq.resolver import ResolverConfig
    from smtpcli.inspection.inspect import inspect_message

    if ip is not None:
        try:
            ip = str(ipaddress.ip_address(ip.strip()))
        except ValueError:
            raise UsageError(f"--ip {ip!r} is not an IP address") from None
    config = ResolverConfig.from_options(nameservers, timeout, dns_retries)
    raw = read_message(file)
    report = inspect_message(raw, config=config, offline=offline, ip=ip, sender=sender,
                             helo=helo, target="<stdin>" if file == "-" else file)
    return finish(report, json_mode=json_mode, strict=strict, facts_renderer=render_facts)
