"""``probe``: what a server (or every MX of a domain, every address of each) really offers.

Per address: connect time, greeting and its delay, EHLO before and after TLS, STARTTLS or implicit
TLS with the certificate facts (trust, name match, expiry), AUTH before/after TLS, VRFY/EXPN,
reverse DNS, the accepted TLS versions. Per MX host: DANE TLSA records (RFC 7672) matched against
the live chain. Per domain: the MTA-STS policy (RFC 8461) and MX coverage.

Addresses are probed concurrently (smtplib is blocking, so each runs in a thread via
``asyncio.to_thread``); DNS goes through the configured resolver (``DnsClient``). The result is a
``Report`` whose findings have stable ids (docs/probe.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from smtpcli.dnsq.client import DnsClient
from smtpcli.dnsq.resolver import ResolverConfig, plain_dns_only
from smtpcli.errors import (
    ConnectError,
    NetworkTimeout,
    ProtocolError,
    SmtpcliError,
    SmtpReplyError,
    TlsError,
    UsageError,
)
from smtpcli.results import Finding, Report, Status, problem_counts
from smtpcli.smtp.target import Target, TlsMode, is_ip, loopback_addresses, parse_target

EXTENSIONS = ("PIPELINING", "CHUNKING", "SMTPUTF8", "DSN", "REQUIRETLS", "8BITMIME",
              "ENHANCEDSTATUSCODES", "SIZE", "STARTTLS", "AUTH")
# RFC 4954 4 / RFC 8314: mechanisms that send the password in the clear must not be offered
# without TLS.
CLEARTEXT_MECHANISMS = ("PLAIN", "LOGIN")


@dataclass(frozen=True)
class ProbeOptions:
    """What the user asked for."""

    port: int | None = None
    timeout: float = 10.0
    cafile: str | None = None
    ehlo_name: str | None = None
    first_only: bool = False
    concurrency: int = 16
    cert_days: int = 14
    expect_capabilities: tuple[str, ...] = ()
    tls_versions: bool = True
    vrfy: bool = True
    dane: bool = True
    mta_sts: bool = True
    mta_sts_port: int = 443
    family: int = 0
    resolver: ResolverConfig = field(default_factory=ResolverConfig)
    # Security probes (`--checks`), run on every address reached; off unless named.
    checks: str | None = None
    security: Any = None  # smtpcli.security.SecurityOptions


@dataclass
class AddressProbe:
    """Everything learnt about one address of one host."""

    host: str
    address: str
    port: int
    facts: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    chain: list[bytes] = field(default_factory=list)
    tls: Any = None  # smtpcli.smtp.tlsinfo.TlsInfo once TLS ran
    starttls_offered: bool = False
    banner_name: str | None = None
    completed: bool = False

    @property
    def subject(self) -> str:
        addr = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.host} {addr}:{self.port}" if self.host != self.address else \
            f"{addr}:{self.port}"

    def add(self, id: str, status: Status, summary: str, **kw: Any) -> None:
        self.findings.append(Finding(id, status, summary, subject=self.subject, **kw))


# ---- one address (blocking; runs in a thread) --------------------------------------------------


def _ext_facts(caps: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {name.lower(): name in caps for name in EXTENSIONS}
    size = caps.get("SIZE", "").strip()
    out["size_limit"] = int(size) if size.isdigit() else None
    return out


def probe_address(host: str, address: str, port: int, implicit: bool,
                  opts: ProbeOptions, context: Any = None) -> AddressProbe:
    """The SMTP conversation with one address; problems become findings, never exceptions.

    ``context``: the run's shared client context (a ``tlsversions.Once``), the one this
    conversation would build itself (``make_context`` of the same options).
    """
    from smtpcli.probe.rdns import banner_hostname
    from smtpcli.smtp.connection import ConnectOptions, SmtpConnection
    from smtpcli.smtp.tlsinfo import TlsOptions

    result = AddressProbe(host, address, port)
    sni = None if is_ip(host) else host
    options = ConnectOptions(
        timeout=opts.timeout, ehlo_name=opts.ehlo_name,
        tls=TlsOptions(verify=False, cafile=opts.cafile, sni=sni,
                       unverified_because="probe reports the certificate, never refuses it"),
        # Certificate facts are built here from the raw chain; trust is OpenSSL's verdict from a
        # side connection (see probe_async), which is both cheaper than re-verifying in Python
        # against the whole system store per address and what real senders do.
        with_chain=False,
    )
    target = Target(host, port, TlsMode.IMPLICIT if implicit else TlsMode.NONE, (address,))
    conn = SmtpConnection(target, options)
    facts = result.facts
    facts.update({"host": host, "address": address, "port": port,
                  "tls_mode": "implicit" if implicit else "starttls"})
    step = "connect"
    try:
        if implicit:
            _share_context(conn, context)
        began = time.monotonic()
        banner = conn.open()
        timings = conn.transcript.timings
        facts["connect_ms"] = timings.get("connect")
        facts["banner_ms"] = timings.get("banner")
        facts["banner_delay_ms"] = round((time.monotonic() - began) * 1000 - (
            timings.get("connect") or 0) - (timings.get("tls") or 0), 1)
        if banner is None:
            raise ProtocolError(f"no greeting from {result.subject}")
        facts["banner"] = banner.text
        result.banner_name = banner_hostname(banner.text)
        if implicit:
            _tls_facts(result, conn)
        step = "banner"
        if banner.code != 220:
            result.add("smtp.banner-rejected", Status.FAIL,
                       f"the greeting is not 220: {banner.one_line()}",
                       reference="RFC 5321 3.1")
            conn.quit()
            return result
        step = "ehlo"
        conn.hello()
        caps = conn.capabilities()
        facts["ehlo_before_tls" if not implicit else "ehlo_after_tls"] = caps
        if not implicit:
            facts["auth_before_tls"] = caps.get("AUTH", "").upper().split()
            result.starttls_offered = "STARTTLS" in caps
            if result.starttls_offered:
                step = "starttls"
                _share_context(conn, context)
                try:
                    conn.start_tls()
                except SmtpReplyError as exc:
                    result.add("tls.starttls-refused", Status.FAIL,
                               f"STARTTLS advertised but refused: {exc.reply or exc.code}",
                               reference="RFC 3207 4")
                else:
                    _tls_facts(result, conn)
                    step = "ehlo after TLS"
                    conn.hello()
                    caps = conn.capabilities()
                    facts["ehlo_after_tls"] = caps
        facts["auth_after_tls"] = caps.get("AUTH", "").upper().split() if conn.tls else []
        facts["extensions"] = _ext_facts(caps)
        facts["capabilities"] = caps
        if opts.vrfy:
            step = "VRFY/EXPN"
            facts["vrfy"] = _try(conn, "VRFY postmaster")
            if facts["vrfy"]["code"] != 421:  # 421: the server is closing (RFC 5321 3.8)
                facts["expn"] = _try(conn, "EXPN postmaster")
        step = "quit"
        conn.quit()
        result.completed = True
    except TlsError as exc:
        facts["tls_error"] = exc.one_line()
        # Implicit TLS (port 465) is RFC 8314 3.3; a handshake after STARTTLS is RFC 3207 4.1.
        result.add("tls.handshake-failed", Status.FAIL, exc.one_line(),
                   reference="RFC 8314 3.3" if implicit else "RFC 3207 4.1")
    except (ConnectError, NetworkTimeout) as exc:
        if step == "connect" and (isinstance(exc, ConnectError) or "connect" in exc.message):
            result.add("connect.failed", Status.ERROR, exc.one_line())
        else:
            result.add("smtp.timeout", Status.ERROR, f"{step}: {exc.one_line()}")
    except ProtocolError as exc:
        result.add("smtp.dropped", Status.ERROR, f"{step}: {exc.one_line()}")
    except SmtpcliError as exc:
        result.add("smtp.error", Status.ERROR, f"{step}: {exc.one_line()}")
    finally:
        conn.close()
        facts["timings"] = conn.transcript.timings_ms()
        facts["transcript"] = conn.transcript.to_list()
    return result


def _share_context(conn: Any, context: Any) -> None:
    """Hand the connection the run's shared TLS context instead of building its own (each build
    loads the system trust store: tens of milliseconds of CPU on the path after STARTTLS).

    When the shared build fails, the connection builds its own and reports that error exactly as
    before, at the handshake.
    """
    if context is None or conn._context is not None:
        return
    try:
        conn._context = context.get()
    except Exception:  # noqa: BLE001, S110 - the connection's own build reports it
        pass


def _try(conn: Any, line: str) -> dict[str, Any]:
    reply = conn.command(line)
    return {"code": reply.code, "text": reply.text}


def _tls_facts(result: AddressProbe, conn: Any) -> None:
    from smtpcli.smtp.tlsinfo import cert_info, hostname_matches, peer_chain

    tls = conn.tls
    result.tls = tls
    result.chain = peer_chain(conn.sock) if conn.sock is not None else []
    if tls is None:
        return
    tls.chain = [cert_info(der) for der in result.chain]
    tls.hostname_match = hostname_matches(tls.chain[0].sans, result.host) if tls.chain else None
    # Until the verifying side connection reports, trust is unknown.
    tls.verified, tls.verify_error, tls.verification = None, None, "pending"
    result.facts["tls"] = tls.to_dict()



# ---- findings from one address's facts --------------------------------------------------------


def judge_address(result: AddressProbe, opts: ProbeOptions, *, trust_from_dane: bool = False,
                  tls_versions: list[Any] | None = None) -> None:
    """Turn the facts of one address into findings (TLS, certificate, AUTH, VRFY/EXPN...)."""
    facts = result.facts
    if not result.completed and result.tls is None:
        return
    implicit = facts.get("tls_mode") == "implicit"
    if result.completed and not implicit and not result.starttls_offered:
        result.add("tls.not-offered", Status.FAIL, "STARTTLS is not offered: mail to this "
                   "server travels in plain text", reference="RFC 3207, RFC 8461, RFC 7672",
                   fix="enable STARTTLS with a certificate for the MX name")
    tls = result.tls
    if tls is not None:
        result.add("tls.ok", Status.OK, f"{tls.protocol} {tls.cipher}")
        _judge_certificate(result, tls, opts, trust_from_dane)
    before = facts.get("auth_before_tls") or []
    if before and not implicit:
        clear = [m for m in before if m in CLEARTEXT_MECHANISMS]
        status = Status.FAIL if clear else Status.WARN
        result.add("auth.before-tls", status,
                   f"AUTH offered before TLS: {' '.join(before)}",
                   reference="RFC 4954 4, RFC 8314 3",
                   fix="advertise AUTH only after STARTTLS")
    after = facts.get("auth_after_tls") or []
    if after:
        result.add("auth.offered", Status.INFO, f"AUTH after TLS: {' '.join(after)}")
    for verb, fid in (("vrfy", "smtp.vrfy-enabled"), ("expn", "smtp.expn-enabled")):
        answer = facts.get(verb)
        if answer and answer["code"] in (250, 251):
            result.add(fid, Status.WARN, f"{verb.upper()} confirms addresses: "
                       f"{answer['code']} {answer['text'].splitlines()[0] if answer['text'] else ''}"
                       .rstrip(), reference="RFC 5321 3.5.3, 7.3",
                       fix=f"disable {verb.upper()} (or answer 252)")
    caps = facts.get("capabilities") or {}
    for name in opts.expect_capabilities:
        if result.completed and name.upper() not in caps:
            result.add("smtp.capability-missing", Status.FAIL,
                       f"expected capability {name.upper()} is not advertised")
    if tls_versions:
        accepted = [v.version for v in tls_versions if v.state == "accepted"]
        old = [v for v in accepted if v in ("1.0", "1.1")]
        untested = [v.version for v in tls_versions if v.state == "untested"]
        facts["tls_versions"] = [v.to_dict() for v in tls_versions]
        if old:
            result.add("tls.old-version", Status.WARN,
                       f"accepts deprecated TLS {', '.join(old)}", reference="RFC 8996",
                       fix="set the minimum protocol to TLS 1.2")
        note = f"; could not test {', '.join(untested)} (local OpenSSL)" if untested else ""
        result.add("tls.versions", Status.INFO,
                   f"accepted: {', '.join(accepted) or 'none'}{note}")


def _judge_certificate(result: AddressProbe, tls: Any, opts: ProbeOptions,
                       trust_from_dane: bool) -> None:
    leaf = tls.leaf
    if leaf is None:
        result.add("tls.cert-missing", Status.FAIL, "the server sent no certificate")
        return
    now = dt.datetime.now(dt.UTC)
    not_after = dt.datetime.fromisoformat(leaf.not_after)
    days_left = (not_after - now).days
    result.facts["cert_days_left"] = days_left
    # With a DANE-EE match, trust comes from DNSSEC, not from a CA (RFC 7672 3.1.1).
    soft = Status.INFO if trust_from_dane else Status.WARN
    if leaf.expired:
        result.add("tls.cert-expired", Status.INFO if trust_from_dane else Status.FAIL,
                   f"certificate expired on {leaf.not_after[:10]}", fix="renew the certificate")
    elif leaf.not_yet_valid:
        result.add("tls.cert-not-yet-valid", Status.FAIL,
                   f"certificate not valid before {leaf.not_before}")
    elif days_left < opts.cert_days:
        result.add("tls.cert-expiring", Status.WARN,
                   f"certificate expires in {days_left} days ({leaf.not_after[:10]})",
                   fix="renew the certificate")
    if tls.verified is None:
        result.add("tls.cert-unverified", Status.ERROR, f"certificate trust unknown: "
                   f"{tls.verify_error}")
    elif not tls.verified:
        result.add("tls.cert-untrusted", soft,
                   f"certificate not trusted: {tls.verify_error}",
                   detail="trusted via DANE instead" if trust_from_dane else None,
                   fix="use a certificate from a public CA (or publish DANE TLSA records)")
    if tls.hostname_match is False:
        result.add("tls.cert-name-mismatch", soft,
                   f"certificate does not cover {tls.server_name or result.host}",
                   detail="names: " + (", ".join(leaf.sans) or leaf.subject))
    if tls.verified and tls.hostname_match is not False and not leaf.expired:
        result.add("tls.cert-ok", Status.OK,
                   f"certificate valid for {tls.server_name or result.host}, "
                   f"{days_left} days left")


# ---- the whole run --------------------------------------------------------------------------


@dataclass
class HostPlan:
    host: str
    addresses: list[str]
    preference: int | None = None


def _is_domain_text(text: str) -> bool:
    """A bare name (no scheme, port or brackets, not an IP): look up its MX records."""
    raw = text.strip()
    return "://" not in raw and ":" not in raw and "[" not in raw and not is_ip(raw)


async def _plan(text: str, opts: ProbeOptions, client: DnsClient,
                report: Report) -> tuple[Target, list[HostPlan], str | None]:
    from smtpcli.smtp.mx import UndeliverableDomainError, resolve_mx_async

    target = parse_target(text, port=opts.port)
    if is_ip(target.host):
        version = 6 if ":" in target.host else 4
        if opts.family and opts.family != version:
            raise UsageError(f"-{opts.family} given, but {target.host} is an IPv{version} "
                             "address")
        return target, [HostPlan(target.host, [target.host])], None
    local = loopback_addresses(target.host, opts.family)
    if local is not None:  # RFC 6761 6.3: never asked of DNS, never a mail domain
        return target, [HostPlan(target.host, list(local))], None
    if _is_domain_text(text):
        try:
            hosts = await resolve_mx_async(target.host, client, family=opts.family)
        except UndeliverableDomainError as exc:
            report.add("dns.no-mail", Status.FAIL, exc.one_line())
            return target, [], None
        except SmtpcliError as exc:
            report.add("dns.mx-failed", Status.ERROR, exc.one_line())
            return target, [], None
        report.facts["mx"] = [h.to_dict() for h in hosts]
        plans = []
        for h in hosts:
            if h.error and not h.addresses:
                status = Status.ERROR if "failed" in h.error else Status.FAIL
                report.add("dns.mx-address", status, f"{h.host}: {h.error}", subject=h.host)
            plans.append(HostPlan(h.host, list(h.addresses), h.preference))
        implicit = bool(hosts) and hosts[0].implicit
        if implicit:
            report.add("dns.no-mx", Status.INFO,
                       f"{target.host} has no MX records: its A/AAAA is the implicit MX",
                       reference="RFC 5321 5.1")
        return target, plans, None if implicit else target.host
    types = {4: ["A"], 6: ["AAAA"]}.get(opts.family, ["A", "AAAA"])
    lookups = await client.query_many([(target.host, t) for t in types])
    addresses = [t for lk in lookups if lk.ok for t in lk.texts]
    if not addresses:
        failed = [lk for lk in lookups if lk.failed]
        if failed:
            report.add("dns.address-failed", Status.ERROR,
                       f"address lookup of {target.host} failed: {failed[0].error}")
        else:
            report.add("dns.no-address", Status.FAIL, f"{target.host} has no A/AAAA records")
    return target, [HostPlan(target.host, addresses)], None


async def _tlsa(client: DnsClient, host: str, port: int) -> dict[str, Any]:
    from smtpcli.probe.dane import TlsaRecord, tlsa_name

    lookup = await client.query(tlsa_name(host, port), "TLSA")
    out: dict[str, Any] = {"name": tlsa_name(host, port), "state": lookup.state.value,
                           "authenticated": lookup.authenticated, "records": lookup.texts}
    if lookup.failed:
        out["error"] = lookup.error
    if lookup.ok:
        out["parsed"] = [TlsaRecord.from_rdata(r) for r in lookup.records]
    return out


async def probe_async(text: str, opts: ProbeOptions) -> tuple[Report, list[AddressProbe]]:
    """Probe ``text`` (host, URL or domain); returns the report and the per-address results."""
    started = time.monotonic()
    # Before the first question imports dnspython (DnsClient._ask imports dns.resolver before
    # the resolver is made): keeps its DNS-over-HTTPS stack (httpx, ~50 ms) off the path to the
    # first connection.
    plain_dns_only()
    report = Report(command="probe", target=text)
    client = DnsClient(opts.resolver)
    target, plans, domain = await _plan(text, opts, client, report)
    if opts.first_only:
        plans = [HostPlan(p.host, p.addresses[:1], p.preference) for p in plans if p.addresses][:1]
    port = target.port
    implicit = target.tls is TlsMode.IMPLICIT
    report.facts["target"] = {"given": text, "host": target.host, "port": port,
                              "mode": "domain" if domain else "host",
                              "tls": "implicit" if implicit else "starttls"}
    limit = asyncio.Semaphore(max(1, opts.concurrency))
    # TLS contexts shared by every connection of the run, built once (see _prepare).
    from smtpcli.probe.tlsversions import Once, verifying_context
    from smtpcli.smtp.tlsinfo import TlsOptions, make_context

    main_context = Once(lambda: make_context(TlsOptions(verify=False, cafile=opts.cafile)))
    verify_context = Once(lambda: verifying_context(opts.cafile))

    async def one(host: str, address: str) -> tuple[AddressProbe, list[Any] | None, Any]:
        from smtpcli.probe.rdns import reverse_dns

        loop = asyncio.get_running_loop()
        async with limit:
            # run_in_executor submits at once, before the loop does anything slow (the first DNS
            # question imports dnspython). The side connections (OpenSSL's verdict on the chain,
            # one handshake per TLS version) run next to the main conversation, so an address
            # costs about one greeting delay.
            main = loop.run_in_executor(None, probe_address, host, address, port, implicit, opts,
                                        main_context)
            verify = loop.run_in_executor(None, _side, "verify", host, address, port, implicit,
                                          opts, verify_context)
            versions = loop.run_in_executor(None, _side,
                                            "versions" if opts.tls_versions else "none", host,
                                            address, port, implicit, opts)
            # Reverse DNS does not need the conversation: ask while the greeting is awaited.
            rdns = await reverse_dns(client, address)
            result, verdict, tried = await asyncio.gather(main, verify, versions)
        if result.tls is not None:
            _apply_verdict(result, verdict[0] if verdict else None)
        rdns.set_banner_name(result.banner_name)
        return result, tried or None, rdns

    # Three blocking jobs per address (conversation, verification, TLS versions) run at once;
    # asyncio's default executor (CPU count + 4 threads) would queue them and serialise hosts.
    from concurrent.futures import ThreadPoolExecutor

    n_addresses = sum(len(p.addresses) for p in plans)
    # One more worker: _prepare.
    workers = max(4, 3 * min(max(1, opts.concurrency), max(1, n_addresses)) + 1)
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=workers))
    jobs = [asyncio.ensure_future(one(p.host, a)) for p in plans for a in p.addresses]
    # Scheduled after the jobs, so it starts once their connections are on their way.
    prepared = asyncio.ensure_future(_prepare_soon(main_context, verify_context)) \
        if n_addresses else None
    dane = opts.dane and not is_ip(target.host) and loopback_addresses(target.host) is None
    tlsa_jobs = [_tlsa(client, p.host, port) for p in plans] if dane else []
    mta_job = _mta_sts(client, domain, opts) if (domain and opts.mta_sts) else None
    gathered = await asyncio.gather(*jobs, *tlsa_jobs, *([mta_job] if mta_job else []))
    probes = gathered[:len(jobs)]
    tlsa_by_host = dict(zip([p.host for p in plans], gathered[len(jobs):len(jobs) + len(tlsa_jobs)],
                            strict=True)) if dane else {}
    mta = gathered[-1] if mta_job else None
    if prepared is not None:
        await prepared

    results: list[AddressProbe] = []
    for result, versions, rdns in probes:
        dane_ok = False
        if dane:
            dane_ok = _judge_dane(result, tlsa_by_host.get(result.host))
        judge_address(result, opts, trust_from_dane=dane_ok,
                      tls_versions=versions if (result.tls is not None) else None)
        _judge_rdns(result, rdns)
        results.append(result)
    if mta is not None:
        _judge_mta_sts(report, mta, plans, results)
    for result in results:
        report.findings.extend(result.findings)
    report.facts["hosts"] = [r.facts for r in results]
    if dane:
        report.facts["tlsa"] = {
            h: {k: v for k, v in t.items() if k != "parsed"} for h, t in tlsa_by_host.items()
        }
    if opts.checks:
        report.findings.extend(await asyncio.to_thread(_security, results, opts, domain))
        report.facts["security_checks"] = opts.checks
    report.facts["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
    report.summary = _summary(report, results)
    return report, results


def _security(results: list[AddressProbe], opts: ProbeOptions, domain: str | None
              ) -> list[Finding]:
    """The security probes on every address that greeted us, even when STARTTLS or the TLS
    handshake failed there (the plain-text probes do not need TLS; those that do say why they
    could not run). An address that could not be reached gets an error finding per check."""
    from dataclasses import replace

    from smtpcli.security import CHECKS, SecurityOptions, parse_checks, run_on_addresses

    security = opts.security or SecurityOptions(timeout=opts.timeout, ehlo_name=opts.ehlo_name)
    if domain and not security.user_domain:
        security = replace(security, user_domain=domain, user_domain_from="the domain probed")
    greeted = [r for r in results if r.completed or "banner" in r.facts]
    findings = run_on_addresses(
        [(r.host, r.address, r.port, r.facts.get("tls_mode") == "implicit") for r in greeted],
        opts.checks or "", security, concurrency=opts.concurrency)
    for r in results:
        if r in greeted:
            continue
        why = next((f.summary for f in r.findings if f.status in (Status.ERROR, Status.FAIL)),
                   "the server could not be reached")
        for name in parse_checks(opts.checks or ""):
            findings.append(Finding(CHECKS[name][1][0], Status.ERROR,
                                    f"the {name} probe could not run: {why}", subject=r.subject))
    return findings


def _apply_verdict(result: AddressProbe, verdict: Any) -> None:
    """OpenSSL's chain verification from the side connection becomes the TLS facts' verdict."""
    tls = result.tls
    if verdict is not None and verdict.state in ("accepted", "refused"):
        tls.verified = verdict.state == "accepted"
        tls.verify_error = None if tls.verified else verdict.detail
        tls.verification = "openssl"
    else:
        tls.verified = None
        tls.verify_error = "could not verify: " + (verdict.detail if verdict else "no result")
        tls.verification = "failed"
    result.facts["tls"] = tls.to_dict()


async def _prepare_soon(*contexts: Any) -> None:
    await asyncio.get_running_loop().run_in_executor(None, _prepare, *contexts)


def _prepare(*contexts: Any) -> None:
    """CPU work every TLS connection of the run needs, done while the greetings are awaited
    (the other threads sit in recv then): import cryptography for the certificate facts and
    build the shared contexts. Failures are left to the connections that need the result."""
    for context in contexts[:1]:
        try:
            context.get()
        except Exception:  # noqa: BLE001, S110 - the connection reports it
            pass
    try:
        from cryptography import x509  # noqa: F401 - what tlsinfo.cert_info imports
        from cryptography.hazmat.primitives import hashes  # noqa: F401
        from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: F401
    except ImportError:
        pass
    for context in contexts[1:]:
        try:
            context.get()
        except Exception:  # noqa: BLE001, S110 - the connection reports it
            pass


def _side(kind: str, host: str, address: str, port: int, implicit: bool,
          opts: ProbeOptions, context: Any = None) -> list[Any]:
    """A side connection: ``verify`` (OpenSSL verifies the chain) or ``versions``.

    ``context``: the run's shared verifying context (``tlsversions.Once``) for ``verify``.
    """
    from smtpcli.probe.tlsversions import accepted_versions, verify_handshake
    from smtpcli.smtp.connection import ConnectOptions

    if kind == "none":
        return []
    target = Target(host, port, TlsMode.IMPLICIT if implicit else TlsMode.NONE, (address,))
    options = ConnectOptions(timeout=opts.timeout, ehlo_name=opts.ehlo_name, with_chain=False)
    sni = None if is_ip(host) else host
    if kind == "verify":
        return [verify_handshake(target, options, sni, opts.cafile, context)]
    return accepted_versions(target, options, sni)


def _summary(report: Report, results: list[AddressProbe]) -> str:
    hosts = len({r.host for r in results})
    parts = [f"{len(results)} address{'es' if len(results) != 1 else ''} on {hosts} "
             f"host{'s' if hosts != 1 else ''}"]
    parts += problem_counts([f.status for f in report.findings])
    return ", ".join(parts)


# ---- DANE, reverse DNS, MTA-STS -----------------------------------------------------------------


def _judge_dane(result: AddressProbe, tlsa: dict[str, Any] | None) -> bool:
    """Findings for DANE on one address; True when a usable record matched (RFC 7672)."""
    from smtpcli.probe.dane import DaneState, match_tlsa

    if tlsa is None:
        return False
    if tlsa.get("error"):
        result.add("dane.lookup-failed", Status.ERROR,
                   f"TLSA lookup {tlsa['name']} failed: {tlsa['error']}")
        return False
    records = tlsa.get("parsed") or []
    if not records:
        result.add("dane.none", Status.INFO, f"no TLSA records at {tlsa['name']}")
        return False
    signed = bool(tlsa.get("authenticated"))
    if not signed:
        # RFC 7672 2.2: TLSA records not validated by DNSSEC are unusable.
        result.add("dane.unsigned", Status.WARN,
                   f"TLSA records at {tlsa['name']} are not DNSSEC-validated (no AD bit): "
                   "senders ignore them", reference="RFC 7672 2.2")
    if result.tls is None:
        if result.completed:
            result.add("dane.no-tls", Status.FAIL,
                       "TLSA records published but no TLS: DANE senders will not deliver",
                       reference="RFC 7672 2.2")
        return False
    match = match_tlsa(records, result.chain)
    if match.state is DaneState.MATCH and any(m["usage"] == "DANE-TA" for m in match.matched) \
            and not any(m["usage"] == "DANE-EE" for m in match.matched) \
            and result.tls.hostname_match is False:
        # RFC 7672 3.2.2: with DANE-TA the certificate must also match the MX name.
        match.notes.append("DANE-TA matched but the certificate does not cover the MX name")
        match.state = DaneState.MISMATCH
    result.facts["dane"] = match.to_dict() | {"authenticated": signed}
    if match.state is DaneState.MATCH:
        result.add("dane.match", Status.OK if signed else Status.INFO,
                   f"certificate matches TLSA ({match.matched[0]['record'][:40]}...)")
        return signed and any(m["usage"] == "DANE-EE" for m in match.matched)
    if match.state is DaneState.UNUSABLE:
        result.add("dane.unusable", Status.WARN,
                   "TLSA records present but none usable for SMTP (usages 0/1)",
                   reference="RFC 7672 3.1.3")
        return False
    result.add("dane.mismatch", Status.FAIL if signed else Status.WARN,
               "the certificate matches none of the TLSA records",
               detail="; ".join(match.notes) or None, reference="RFC 7672 3")
    return False


def _judge_rdns(result: AddressProbe, rdns: Any) -> None:
    result.facts["rdns"] = rdns.to_dict()
    if rdns.state == "error":
        result.add("dns.ptr-failed", Status.ERROR, f"reverse DNS of {result.address}: "
                   f"{rdns.error}")
    elif rdns.state == "missing":
        result.add("dns.ptr-missing", Status.WARN, f"{result.address} has no PTR record",
                   fix="publish a PTR record naming the MX host")
    elif rdns.state == "mismatch":
        result.add("dns.ptr-mismatch", Status.WARN,
                   f"PTR {', '.join(rdns.names)} does not resolve back to {result.address}",
                   reference="RFC 8499 (FCrDNS)")
    else:
        result.add("dns.ptr-ok", Status.OK, f"PTR {rdns.confirmed[0]} (forward-confirmed)")
        if rdns.banner_match is False:
            result.add("dns.ptr-banner-mismatch", Status.INFO,
                       f"greeting names {rdns.banner_name}, PTR says {', '.join(rdns.names)}")


async def _mta_sts(client: DnsClient, domain: str, opts: ProbeOptions) -> dict[str, Any]:
    """The _mta-sts TXT record and the policy (checks.mtasts does the HTTPS fetch and parsing
    through the configured resolver)."""
    from smtpcli.checks.common import CheckOptions
    from smtpcli.checks.mtasts import PolicyFetchError, fetch_policy, parse_policy

    out: dict[str, Any] = {"domain": domain}
    txt = await client.query(f"_mta-sts.{domain}", "TXT")
    records = [t for t in txt.texts if t.lower().startswith("v=stsv1")]
    if txt.failed:
        out["state"], out["error"] = "error", f"TXT lookup failed: {txt.error}"
        return out
    if not records:
        out["state"] = "none"
        return out
    out["txt"] = records
    try:
        body, meta = await fetch_policy(
            client, domain, CheckOptions(cafile=opts.cafile, mta_sts_port=opts.mta_sts_port,
                                         timeout=opts.timeout))
    except PolicyFetchError as exc:
        out["state"], out["error"] = "unreachable", str(exc)
        return out
    fields, problems = parse_policy(body)
    out.update({"state": "policy", "policy": fields, "problems": problems, "fetch": meta})
    return out


def _judge_mta_sts(report: Report, mta: dict[str, Any], plans: list[HostPlan],
                   results: list[AddressProbe]) -> None:
    from smtpcli.checks.mtasts import mx_matches

    report.facts["mta_sts"] = mta
    state = mta.get("state")
    if state == "none":
        report.add("mta-sts.none", Status.INFO, f"{mta['domain']} publishes no MTA-STS policy")
        return
    if state == "error":
        report.add("mta-sts.lookup-failed", Status.ERROR, mta["error"])
        return
    if state == "unreachable":
        report.add("mta-sts.policy-unreachable", Status.FAIL,
                   f"MTA-STS TXT published but the policy cannot be fetched: {mta['error']}",
                   reference="RFC 8461 3.3")
        return
    policy = mta.get("policy") or {}
    if mta.get("problems"):
        report.add("mta-sts.syntax", Status.FAIL, "; ".join(mta["problems"]),
                   reference="RFC 8461 3.2")
    mode = str(policy.get("mode", "")).lower()
    patterns = policy.get("mx") or []
    enforce = mode == "enforce"
    report.add("mta-sts.policy", Status.OK, f"policy mode {mode or '?'}, mx {', '.join(patterns)}")
    for plan in plans:
        if not any(mx_matches(plan.host, p) for p in patterns):
            report.add("mta-sts.mx-not-covered",
                       Status.FAIL if enforce else Status.WARN,
                       f"MX {plan.host} matches no mx: pattern of the policy "
                       f"({', '.join(patterns) or 'none'})",
                       subject=plan.host, reference="RFC 8461 4.1")
    if not enforce:
        return
    for r in results:
        if not r.completed and r.tls is None:
            continue
        # RFC 8461 4.2: in enforce mode the MX must offer STARTTLS with a certificate that is
        # trusted, unexpired and valid for the MX name.
        problem = None
        if r.tls is None:
            problem = "no TLS"
        elif not r.tls.verified:
            problem = f"certificate not trusted ({r.tls.verify_error})"
        elif r.tls.hostname_match is False:
            problem = "certificate does not cover the MX name"
        if problem:
            report.add("mta-sts.cert-invalid", Status.FAIL,
                       f"mode enforce, but {problem}: policy-following senders will not deliver",
                       subject=r.subject, reference="RFC 8461 4.2")


def run_probe(text: str, opts: ProbeOptions) -> tuple[Report, list[AddressProbe]]:
    """Blocking entry point for the CLI."""
    return asyncio.run(probe_async(text, opts))


def incomplete_reason(report: Report) -> str | None:
    """One line saying why the probe could not complete (its first error finding), or None.

    The findings say it per address; this is the line for stderr when the exit code is 3.
    """
    errors = [f for f in report.findings if f.status is Status.ERROR]
    if not errors:
        return None
    first = errors[0]
    named = (first.summary, report.target or "")
    where = f"{first.subject}: " if first.subject and not any(
        first.subject in text for text in named) else ""
    more = f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})" \
        if len(errors) > 1 else ""
    return f"probe of {report.target} could not complete: {where}{first.summary}{more}"
