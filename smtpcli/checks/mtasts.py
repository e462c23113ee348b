"""MTA-STS (RFC 8461): the _mta-sts TXT record, the policy fetched over HTTPS from
mta-sts.<domain> resolved through the configured resolver, its syntax, mode, and MX coverage."""

from __future__ import annotations

import asyncio
import re
import ssl
from typing import Any

from smtpcli.checks.common import CheckOptions, FamilyResult, parse_tags, versioned_txt
from smtpcli.checks.mx import parse_mx
from smtpcli.dnsq.client import DnsClient
from smtpcli.results import Status

POLICY_PATH = "/.well-known/mta-sts.txt"
MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 3.3: senders may limit the body; 64 KiB is generous
MAX_AGE_LIMIT = 31557600  # RFC 8461 3.2
_ID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")


class PolicyFetchError(Exception):
    """The policy could not be fetched; the message says why."""


def parse_policy(text: str) -> tuple[dict[str, Any], list[str]]:
    """Fields of a policy body (RFC 8461 3.2) and its problems."""
    fields: dict[str, Any] = {"mx": []}
    problems: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            problems.append(f"not key: value: {line!r}")
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "mx":
            fields["mx"].append(value.lower().rstrip("."))
        elif key in fields:
            problems.append(f"{key} appears more than once")
        else:
            fields[key] = value
    if fields.get("version") != "STSv1":
        problems.append("version: STSv1 is required")
    mode = fields.get("mode")
    if mode not in ("enforce", "testing", "none"):
        problems.append(f"mode must be enforce, testing or none (got {mode!r})")
    age = fields.get("max_age")
    # RFC 8461 3.2: max_age is 1*10DIGIT (ASCII); '²' passes isdigit() but not int().
    if age is None or not re.fullmatch(r"[0-9]{1,10}", str(age)) or int(age) > MAX_AGE_LIMIT:
        problems.append(f"max_age must be 0..{MAX_AGE_LIMIT} seconds (got {age!r})")
    if mode in ("enforce", "testing") and not fields["mx"]:
        problems.append("at least one mx: line is required")
    return fields, problems


def mx_matches(host: str, pattern: str) -> bool:
    """RFC 8461 4.1: exact, or ``*.`` matching exactly one leftmost label."""
    host, pattern = host.lower().rstrip("."), pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return host == pattern


async def fetch_policy(
    dns: DnsClient, domain: str, opts: CheckOptions
) -> tuple[str, dict[str, Any]]:
    """GET the policy from mta-sts.<domain>, connecting to the address our resolver gave."""
    host = f"mta-sts.{domain}"
    a, aaaa = await asyncio.gather(dns.query(host, "A"), dns.query(host, "AAAA"))
    addresses = [t for lk in (a, aaaa) if lk.ok for t in lk.texts]
    if not addresses:
        failed = [lk for lk in (a, aaaa) if lk.failed]
        if failed:
            raise PolicyFetchError(f"address lookup of {host} failed: {failed[0].error}")
        raise PolicyFetchError(f"{host} has no A or AAAA record")
    ctx = ssl.create_default_context(cafile=opts.cafile)
    errors = []
    for address in addresses:
        try:
            return await asyncio.wait_for(_get(address, host, opts.mta_sts_port, ctx),
                                          opts.timeout)
        except (OSError, ssl.SSLError, TimeoutError, PolicyFetchError) as exc:
            errors.append(f"{address}: {_describe(exc)}")
    raise PolicyFetchError("; ".join(errors))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not valid: {exc.verify_message}"
    return str(exc) or type(exc).__name__


async def _get(address: str, host: str, port: int, ctx: ssl.SSLContext) -> tuple[str, dict[str, Any]]:
    reader, writer = await asyncio.open_connection(address, port, ssl=ctx, server_hostname=host)
    try:
        writer.write(f"GET {POLICY_PATH} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: smtpcli\r\n"
                     "Connection: close\r\n\r\n".encode("ascii"))
        await writer.drain()
        data = b""
        while len(data) <= MAX_POLICY_BYTES + 8192:
            chunk = await reader.read(65536)
            if not chunk:
                break
            data += chunk
    finally:
        writer.close()
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise PolicyFetchError("no complete HTTP response")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdecimal():  # latin-1 '\xb2' is isdigit(), not int()
        raise PolicyFetchError(f"bad HTTP status line {lines[0]!r}")
    status = int(parts[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if status != 200:
        # RFC 8461 3.3: redirects must not be followed; anything but 200 is no policy.
        raise PolicyFetchError(f"HTTP {status} for https://{host}{POLICY_PATH}")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    elif "content-length" in headers and headers["content-length"].isdecimal():
        body = body[: int(headers["content-length"])]
    if len(body) > MAX_POLICY_BYTES:
        raise PolicyFetchError(f"policy larger than {MAX_POLICY_BYTES} bytes")
    return body.decode("utf-8", "replace"), {
        "address": address, "status": status, "content_type": headers.get("content-type", ""),
    }


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0] or b"0", 16)
        except ValueError:  # RFC 9112 7.1: chunk-size is HEXDIG; anything else is broken
            raise PolicyFetchError(f"bad chunk size {size_line[:20]!r}") from None
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


async def check_mtasts(dns: DnsClient, domain: str, opts: CheckOptions) -> FamilyResult:
    result = FamilyResult("mta-sts")
    name = f"_mta-sts.{domain}"
    records = await versioned_txt(dns, result, name, "v=STSv1", "MTA-STS record")
    if records is None:
        return result
    if not records:
        result.add("mta-sts.missing", Status.INFO,
                   f"no MTA-STS record at {name}: senders cannot require TLS to your MX",
                   reference="RFC 8461 3.1")
        return result
    result.facts.update({"name": name, "records": records})
    pairs, bad = parse_tags(records[0])
    problems = [f"not tag=value: {b!r}" for b in bad]
    tags = dict(pairs)
    if not pairs or pairs[0] != ("v", "STSv1"):
        problems.append("v=STSv1 must come first")
    if not _ID_RE.match(tags.get("id", "")):
        problems.append("id= must be 1-32 letters or digits")
    if len(records) > 1:
        problems.append(f"{len(records)} records (senders treat this as no policy)")
    if problems:
        result.add("mta-sts.syntax", Status.FAIL, "MTA-STS record: " + "; ".join(problems),
                   reference="RFC 8461 3.1")
    try:
        body, http = await fetch_policy(dns, domain, opts)
    except PolicyFetchError as exc:
        result.add("mta-sts.policy-unreachable", Status.FAIL,
                   f"the policy at https://mta-sts.{domain}{POLICY_PATH} could not be fetched: "
                   f"{exc}", reference="RFC 8461 3.3")
        return result
    result.facts["http"] = http
    result.facts["policy_text"] = body
    policy, pproblems = parse_policy(body)
    if not http["content_type"].lower().startswith("text/plain"):
        pproblems.append(f"Content-Type is {http['content_type'] or 'missing'}, not text/plain")
    result.facts["policy"] = policy
    if pproblems:
        result.add("mta-sts.syntax", Status.FAIL, "MTA-STS policy: " + "; ".join(pproblems),
                   reference="RFC 8461 3.2")
    mode = policy.get("mode")
    if mode == "testing":
        result.add("mta-sts.testing", Status.WARN,
                   "mode: testing: senders report failures but still deliver without TLS",
                   reference="RFC 8461 5", fix="mode: enforce")
    elif mode == "none":
        result.add("mta-sts.mode-none", Status.INFO, "mode: none: the policy is withdrawn",
                   reference="RFC 8461 5")
    mx = await dns.query(domain, "MX")
    if mx.ok and mode in ("enforce", "testing"):
        hosts = [h for _, h in parse_mx(mx) if h != "."]
        uncovered = [h for h in hosts if not any(mx_matches(h, p) for p in policy["mx"])]
        for host in uncovered:
            result.add("mta-sts.mx-not-covered",
                       Status.FAIL if mode == "enforce" else Status.WARN,
                       f"MX {host} matches no mx: line of the policy; senders "
                       + ("will not deliver to it" if mode == "enforce" else "report failures"),
                       subject=host, reference="RFC 8461 4.1", fix=f"mx: {host}")
    if not any(f.status.rank >= Status.WARN.rank for f in result.findings):
        result.add("mta-sts.ok", Status.OK, f"MTA-STS policy mode: {mode}, fetched over HTTPS")
    return result
