"""Security probes for ``probe --checks``: open relay, user enumeration, AUTH before TLS,
STARTTLS command injection, SMTP smuggling.

``run_checks(target, checks, options)`` runs the named checks against one server and returns
their findings (``ok`` findings when not vulnerable, ``error`` when a probe could not
complete, saying why). Every probe uses its own connections, bounded by ``options.timeout``
per step. Only the smuggling probe authenticates (when the options carry credentials) and
delivers (test) messages, to the recipient given in the options or postmaster at the mail
domain. See docs/security-probes.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from smtpcli.errors import UsageError
from smtpcli.results import Finding
from smtpcli.security.common import SecurityOptions
from smtpcli.smtp.target import Target

__all__ = ["CHECKS", "FINDING_IDS", "SecurityOptions", "parse_checks", "run_checks", "run_on_addresses"]

#: check name -> (module, finding ids it produces), in the order they run.
CHECKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "relay": ("openrelay", ("security.open-relay",)),
    "enum": ("userenum", ("security.vrfy-enum", "security.expn-enabled", "security.rcpt-enum")),
    "auth-plain": ("authbeforetls", ("security.auth-before-tls",)),
    "starttls-injection": ("starttls_injection", ("security.starttls-injection",)),
    "smuggling": ("smuggling", ("security.smuggling",)),
}
FINDING_IDS: tuple[str, ...] = tuple(i for _, ids in CHECKS.values() for i in ids)


def parse_checks(spec: str | Iterable[str]) -> list[str]:
    """``"relay,enum"`` or ``"all"`` -> check names in run order; unknown names: UsageError."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip().lower() for part in items for n in part.split(",") if n.strip()]
    if "all" in names:
        return list(CHECKS)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise UsageError(f"unknown check {', '.join(unknown)} "
                         f"(choose from {', '.join(CHECKS)} or all)")
    return [n for n in CHECKS if n in names]


def run_checks(target: Target, checks: str | Iterable[str],
               options: SecurityOptions | None = None) -> list[Finding]:
    """Run the named checks against ``target``; findings in check order."""
    import importlib

    options = options or SecurityOptions()
    findings: list[Finding] = []
    for name in parse_checks(checks):
        module = importlib.import_module(f"smtpcli.security.{CHECKS[name][0]}")
        check: Callable[[Target, SecurityOptions], list[Finding]] = module.check
        findings.extend(check(target, options))
    return findings


def run_on_addresses(
    addresses: Iterable[tuple[str, str, int, bool]],
    checks: str | Iterable[str],
    options: SecurityOptions | None = None,
    *,
    concurrency: int = 8,
) -> list[Finding]:
    """Run the checks against every (host, address, port, implicit_tls) at once, one thread per
    address; each finding names its address as ``subject``, in the order the addresses came."""
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import replace

    from smtpcli.smtp.target import TlsMode

    names = parse_checks(checks)
    options = options or SecurityOptions()
    items = list(addresses)

    def one(item: tuple[str, str, int, bool]) -> list[Finding]:
        host, address, port, implicit = item
        target = Target(host, port, TlsMode.IMPLICIT if implicit else TlsMode.NONE, (address,))
        sni = None if host == address else host
        found = run_checks(target, names, replace(options, server_name=options.server_name or sni))
        where = f"[{address}]" if ":" in address else address
        subject = f"{where}:{port}" if host == address else f"{host} {where}:{port}"
        for finding in found:
            finding.subject = finding.subject or subject
        return found

    if not items:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(items)))) as pool:
        return [f for found in pool.map(one, items) for f in found]
