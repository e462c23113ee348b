"""``smtpcli dkim``: keygen, sign, verify, check-key."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from smtpcli.cli.options import dns_options, finish, json_option, strict_option, timeout_option
from smtpcli.errors import UsageError
from smtpcli.results import Report, Status

if TYPE_CHECKING:
    from smtpcli.render.style import Painter


@click.group("dkim")
def command() -> None:
    """DKIM keys: generate, sign, verify, check a published key.

    \b
    Examples:
      smtpcli dkim keygen --domain example.com --selector s1
      smtpcli dkim check-key --domain example.com --selector s1
      smtpcli dkim verify message.eml
    """


def _keygen_facts(report: Report, paint: Painter) -> Iterable[str]:
    f = report.facts
    yield f"{paint('private key', 'bold')}  {f['key_file']} (mode 0600)"
    yield f"{paint('record name', 'bold')}  {f['record_name']}"
    yield paint("TXT record (255-byte strings):", "bold")
    for chunk in f["txt_strings"]:
        yield f'  "{chunk}"'
    yield paint("zone-file line:", "bold")
    yield f"  {f['zone_line']}"


@command.command("keygen")
@click.option("--domain", required=True, metavar="DOMAIN", help="Signing domain (d=).")
@click.option("--selector", required=True, metavar="SELECTOR", help="Selector (s=).")
@click.option("--type", "key_type", type=click.Choice(["rsa", "ed25519"]), default="rsa",
              show_default=True, help="Key type (ed25519: RFC 8463).")
@click.option("--bits", type=click.IntRange(1024, 4096), default=2048, show_default=True,
              help="RSA key size.")
@click.option("--out", "-o", "out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Private key file [default: SELECTOR.DOMAIN.key].")
@click.option("--force", is_flag=True, help="Overwrite an existing key file.")
@json_option
def keygen(domain: str, selector: str, key_type: str, bits: int, out: str | None, force: bool,
           json_mode: bool) -> int:
    """Generate a key pair: write the private key (0600), print the DNS TXT record.

    \b
    Examples:
      smtpcli dkim keygen --domain example.com --selector s1
      smtpcli dkim keygen --domain example.com --selector s2 --type ed25519
    """
    from smtpcli.checks.dkimkeys import generate, record_name, split_txt, write_private_key
    from smtpcli.checks.dkimkeys import zone_line as make_zone_line

    domain = domain.strip().rstrip(".").lower()
    path = Path(out or f"{selector}.{domain}.key")
    if path.exists() and not force:
        raise UsageError(f"{path} exists; refusing to overwrite it", hint="use --force")
    pair = generate(key_type, bits)
    try:
        write_private_key(path, pair.private, force=force)
    except FileExistsError:
        raise UsageError(f"{path} exists; refusing to overwrite it", hint="use --force") from None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    value = pair.txt_value()
    report = Report(command="dkim keygen", target=record_name(selector, domain))
    report.facts = {
        "key_file": str(path), "key_type": pair.key_type, "bits": pair.bits,
        "record_name": record_name(selector, domain), "txt_record": value,
        "txt_strings": split_txt(value), "zone_line": make_zone_line(selector, domain, value),
    }
    report.add("dkim.keygen", Status.OK, f"{pair.key_type} key written to {path}")
    report.summary = f"publish the TXT record at {record_name(selector, domain)}"
    return finish(report, json_mode=json_mode, facts_renderer=_keygen_facts)


def _read(path: str) -> bytes:
    from smtpcli.cli.inspect import read_message

    return read_message(path)


@command.command("sign")
@click.argument("file", metavar="FILE|-")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False),
              metavar="KEYFILE", help="Private key (PEM RSA/Ed25519, or base64 Ed25519 seed).")
@click.option("--selector", required=True, metavar="SELECTOR", help="Selector (s=).")
@click.option("--domain", required=True, metavar="DOMAIN", help="Signing domain (d=).")
@click.option("--headers", metavar="H1:H2:...",
              help="Header fields to sign (default: dkimpy's RFC 6376 list).")
@click.option("--length", is_flag=True, help="Add l= (body length); weakens the signature.")
@click.option("--canonicalization", "-c", default="relaxed/relaxed", show_default=True,
              metavar="HEADER/BODY", type=click.Choice(["relaxed/relaxed", "relaxed/simple",
                                                        "simple/simple", "simple/relaxed"]),
              help="Canonicalization (c=): relaxed or simple, for header/body.")
@json_option
def sign(file: str, key_path: str, selector: str, domain: str, headers: str | None,
         length: bool, canonicalization: str, json_mode: bool) -> int:
    """Sign FILE and print the signed message on stdout.

    \b
    Examples:
      smtpcli dkim sign message.eml --key s1.example.com.key --selector s1 \\
          --domain example.com > signed.eml
      smtpcli dkim sign - --key k.pem --selector s1 --domain example.com < m.eml
    """
    import dkim

    from smtpcli.checks.dkimkeys import load_private_key
    from smtpcli.smtp.dkimsign import line_ending

    message = _read(file)
    try:
        algorithm, key = load_private_key(Path(key_path).read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read key file {key_path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"{key_path}: {exc}") from None
    include = [h.strip().encode() for h in headers.split(":") if h.strip()] if headers else None
    header_c, _, body_c = canonicalization.partition("/")
    try:
        signature = dkim.sign(
            message, selector.encode(), domain.strip().rstrip(".").lower().encode(), key,
            include_headers=include, length=length, signature_algorithm=algorithm.encode(),
            canonicalize=(header_c.encode(), body_c.encode()), linesep=line_ending(message),
        )
    except dkim.DKIMException as exc:
        raise UsageError(f"cannot sign {file}: {exc}") from None
    signed = signature + message
    if not json_mode:
        sys.stdout.buffer.write(signed)
        sys.stdout.buffer.flush()
        return 0
    report = Report(command="dkim sign", target=file)
    report.add("dkim.signed", Status.OK, f"signed with {algorithm} as d={domain} s={selector}")
    report.facts = {"dkim_signature": signature.decode("ascii", "replace").rstrip("\r\n"),
                    "message": signed.decode("utf-8", "replace")}
    report.summary = f"signed {file}"
    return finish(report, json_mode=True)


@command.command("verify")
@click.argument("file", metavar="FILE|-")
@dns_options
@timeout_option(5.0, "each DNS lookup")
@strict_option
@json_option
def verify(file: str, nameservers: tuple[str, ...], dns_retries: int, timeout: float,
           strict: bool, json_mode: bool) -> int:
    """Verify every DKIM-Signature of FILE (the same code as `inspect`).

    \b
    Examples:
      smtpcli dkim verify message.eml
      smtpcli dkim verify - --nameserver 127.0.0.1:5353 --json < message.eml
    """
    from smtpcli.dnsq.resolver import ResolverConfig
    from smtpcli.inspection.dkimverify import dkim_findings, verify_all
    from smtpcli.inspection.lookups import TxtLookups
    from smtpcli.inspection.parse import parse_message

    config = ResolverConfig.from_options(nameservers, timeout, dns_retries)
    msg = parse_message(_read(file))
    lookups = TxtLookups(config)
    results = verify_all(msg, lookups)
    report = Report(command="dkim verify", target="<stdin>" if file == "-" else file)
    if results:
        report.findings += dkim_findings(results)
    else:
        # Asked to verify, nothing verifies: a failure for exit purposes (as dkimpy's
        # dkimverify exits 1), under its own id; inspect keeps dkim.none as a warning.
        report.add("dkim.unsigned", Status.FAIL, "the message has no DKIM-Signature to verify",
                   reference="RFC 6376 6.1")
    report.facts = {"dkim": [r.to_dict() for r in results],
                    "lookups": [lk.to_dict() for lk in lookups.done.values()]}
    passing = sum(1 for r in results if r.result == "pass")
    report.summary = f"{passing} of {len(results)} DKIM signature(s) pass"
    return finish(report, json_mode=json_mode, strict=strict)


@command.command("check-key")
@click.option("--domain", required=True, metavar="DOMAIN", help="Signing domain (d=).")
@click.option("--selector", required=True, metavar="SELECTOR", help="Selector (s=).")
@dns_options
@timeout_option(5.0, "each DNS lookup")
@strict_option
@json_option
def check_key(domain: str, selector: str, nameservers: tuple[str, ...], dns_retries: int,
              timeout: float, strict: bool, json_mode: bool) -> int:
    """Look up SELECTOR._domainkey.DOMAIN and check the key (same rules as check-domain).

    \b
    Examples:
      smtpcli dkim check-key --domain example.com --selector s1
      smtpcli dkim check-key --domain example.com --selector s1 --strict --json
    """
    from smtpcli.checks.dkim import evaluate_dkim_key_record
    from smtpcli.checks.dkimkeys import record_name
    from smtpcli.dnsq.resolver import ResolverConfig
    from smtpcli.inspection.lookups import TxtLookups

    config = ResolverConfig.from_options(nameservers, timeout, dns_retries)
    name = record_name(selector, domain.strip().rstrip(".").lower())
    lookup = TxtLookups(config).txt(name)
    report = Report(command="dkim check-key", target=name)
    report.facts = {"lookup": lookup.to_dict()}
    if lookup.failed:
        report.add("dkim.key-lookup-failed", Status.ERROR, f"the lookup of {name} failed",
                   detail=lookup.error, subject=name)
    elif not lookup.texts:
        report.add("dkim.key-not-found", Status.FAIL, f"no TXT record at {name}",
                   detail=f"the server said {lookup.state.value}", subject=name,
                   reference="RFC 6376 3.6.2.2")
    else:
        if len(lookup.texts) > 1:
            report.add("dkim.key-multiple", Status.WARN,
                       f"{len(lookup.texts)} TXT records at {name}; verifiers use one at random",
                       reference="RFC 6376 3.6.2.2", subject=name)
        report.findings += evaluate_dkim_key_record(lookup.texts[0], subject=name)
        report.facts["record"] = lookup.texts[0]
        # Kept in the JSON output: which rule set judged the key (the same as check-domain's).
        report.facts["rules"] = "smtpcli.checks.dkim"
    report.summary = f"DKIM key {name}: {report.status.value}"
    return finish(report, json_mode=json_mode, strict=strict)
