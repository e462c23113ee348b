"""DKIM key records (RFC 6376 3.6.1, RFC 8301, RFC 8463): parse, evaluate, probe selectors.

`evaluate_dkim_key_record(text)` is the reusable part (also used by `inspect` and
`dkim check-key`): it needs no DNS and returns findings about one key record's text.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from smtpcli.checks.common import COMMON_DKIM_SELECTORS, CheckOptions, FamilyResult, parse_tags
from smtpcli.dnsq.client import DnsClient, Lookup
from smtpcli.results import Finding, Status

RFC6376 = "RFC 6376 3.6.1"
KNOWN_KEY_TYPES = {"rsa", "ed25519"}
KNOWN_HASHES = {"sha1", "sha256"}
#: RFC 8301 3.2: verifiers MUST NOT accept keys under 1024 bits; signers SHOULD use 2048.
RSA_MIN_BITS = 1024
RSA_GOOD_BITS = 2048


def parse_dkim_key_record(text: str) -> dict[str, Any]:
    """Tags of a key record plus the problems found while splitting it.

    Returns ``{"tags": {tag: value}, "order": [tags], "bad": [pieces], "duplicates": [tags]}``.
    """
    pairs, bad = parse_tags(text)
    tags: dict[str, str] = {}
    duplicates = []
    for tag, value in pairs:
        if tag in tags:
            duplicates.append(tag)
        tags[tag] = value
    return {"tags": tags, "order": [t for t, _ in pairs], "bad": bad, "duplicates": duplicates}


def _key_facts(key_type: str, data: bytes) -> tuple[dict[str, Any], str | None]:
    """Key size facts, or an error text when the key data cannot be parsed."""
    if key_type == "ed25519":
        # RFC 8463 4.2: the raw 32-byte public key, base64-encoded.
        if len(data) != 32:
            return {"type": "ed25519"}, f"an Ed25519 key is 32 bytes, this one is {len(data)}"
        return {"type": "ed25519", "bits": 256}, None
    from dkim.crypto import UnparsableKeyError, parse_public_key

    try:
        pk = parse_public_key(data)
    except (UnparsableKeyError, IndexError, ValueError, TypeError) as exc:
        return {"type": "rsa"}, f"the RSA key does not parse: {exc}"
    return {"type": "rsa", "bits": int(pk["modulus"]).bit_length()}, None


def evaluate_dkim_key_record(text: str, subject: str | None = None) -> list[Finding]:
    """Findings about one DKIM key record text (no DNS): syntax, key type/size, t=y, revoked,
    h=sha1. A record with no problems yields one ``dkim.key`` ok finding with the key facts."""
    findings: list[Finding] = []

    def add(id: str, status: Status, summary: str, **kw: Any) -> None:
        findings.append(Finding(id, status, summary, subject=subject, **kw))

    parsed = parse_dkim_key_record(text)
    tags: dict[str, str] = parsed["tags"]
    problems: list[str] = []
    if parsed["bad"]:
        problems.append("not tag=value: " + ", ".join(repr(b) for b in parsed["bad"]))
    if parsed["duplicates"]:
        # RFC 6376 3.2: a tag appearing twice makes the whole record invalid.
        problems.append("duplicate tags: " + ", ".join(parsed["duplicates"]))
    if "v" in tags:
        if tags["v"] != "DKIM1":
            problems.append(f"v={tags['v']} (must be DKIM1)")
        elif parsed["order"][0] != "v":
            problems.append("v=DKIM1 must be the first tag")
    key_type = tags.get("k", "rsa").lower()
    if key_type not in KNOWN_KEY_TYPES:
        problems.append(f"unknown key type k={key_type}")
    if "p" not in tags:
        problems.append("no p= tag (the public key is required)")
    key_info: dict[str, Any] = {"type": key_type}
    p = tags.get("p")
    if p == "":
        add("dkim.revoked", Status.WARN, "the key is revoked (empty p=)",
            reference="RFC 6376 3.6.1",
            detail="Mail signed with this selector fails verification; remove the selector "
                   "from signers or publish a new key.")
    elif p is not None and key_type in KNOWN_KEY_TYPES:
        try:
            data = base64.b64decode(p, validate=True)
        except (binascii.Error, ValueError):
            problems.append("p= is not valid base64")
        else:
            info, error = _key_facts(key_type, data)
            key_info.update(info)
            if error:
                problems.append(error)
    if problems:
        add("dkim.syntax", Status.FAIL, "the DKIM key record is malformed: " + "; ".join(problems),
            reference=RFC6376, data={"record": text, "problems": problems})
    bits = key_info.get("bits")
    if key_type == "rsa" and isinstance(bits, int):
        if bits < RSA_MIN_BITS:
            add("dkim.key-weak", Status.FAIL,
                f"RSA key of {bits} bits: verifiers must reject keys under {RSA_MIN_BITS} bits",
                reference="RFC 8301 3.2", fix="publish a 2048-bit RSA key",
                data={"bits": bits})
        elif bits < RSA_GOOD_BITS:
            add("dkim.key-weak", Status.WARN,
                f"RSA key of {bits} bits: {RSA_GOOD_BITS} bits or more is recommended",
                reference="RFC 8301 3.2", fix="publish a 2048-bit RSA key",
                data={"bits": bits})
    hashes = [h.lower() for h in tags["h"].split(":") if h] if "h" in tags else []
    if hashes:
        unknown = [h for h in hashes if h not in KNOWN_HASHES]
        if "sha1" in hashes and "sha256" not in hashes:
            add("dkim.sha1", Status.FAIL, "h= allows only sha1, which verifiers must not accept",
                reference="RFC 8301 3.1", fix="remove h= or use h=sha256")
        elif "sha1" in hashes:
            add("dkim.sha1", Status.WARN, "h= still allows sha1 (RFC 8301 forbids it)",
                reference="RFC 8301 3.1", fix="use h=sha256 or drop h=")
        if unknown and not [h for h in hashes if h in KNOWN_HASHES]:
            add("dkim.syntax", Status.FAIL, f"h= lists no known hash ({':'.join(hashes)})",
                reference=RFC6376)
    flags = [f.lower() for f in tags.get("t", "").split(":") if f]
    if "y" in flags:
        add("dkim.testing", Status.WARN,
            "t=y: the domain is testing DKIM, verifiers may treat failures as unsigned",
            reference="RFC 6376 3.6.1", fix="remove t=y once signing works")
    if not findings:
        desc = f"{key_type.upper() if key_type == 'rsa' else 'Ed25519'}"
        if bits and key_type == "rsa":
            desc += f" {bits}-bit"
        add("dkim.key", Status.OK, f"{desc} key published", data={"key": key_info})
    else:
        for f in findings:
            f.data.setdefault("key", key_info)
    return findings


async def _probe(dns: DnsClient, domain: str, selector: str) -> tuple[str, Lookup]:
    # One TXT question per selector: the resolver follows a CNAME (RFC 1034 3.6.2) and the
    # answer's canonical name shows it, so a separate CNAME question would only double the load.
    return selector, await dns.query(f"{selector}._domainkey.{domain}", "TXT")


async def check_dkim(dns: DnsClient, domain: str, opts: CheckOptions) -> FamilyResult:
    """Probe the given and the common selectors concurrently (TXT and CNAME at each name)."""
    result = FamilyResult("dkim")
    selectors = list(dict.fromkeys(opts.dkim_selectors))
    if opts.probe_common_selectors:
        selectors += [s for s in COMMON_DKIM_SELECTORS if s not in selectors]
    probes = await asyncio.gather(*(_probe(dns, domain, s) for s in selectors))
    found: list[dict[str, Any]] = []
    for selector, txt in probes:
        name = f"{selector}._domainkey.{domain}"
        asked = selector in opts.dkim_selectors
        if txt.failed:
            # A failed probe of a guessed selector is still a failed lookup, never "no key".
            result.failed_lookup(txt, f"DKIM selector {selector}")
            continue
        records = [t for t in txt.texts if "p=" in t or t.lower().startswith("v=dkim1")]
        if not records:
            if asked:
                result.add("dkim.not-found", Status.FAIL,
                           f"no DKIM key at {name}", subject=name, reference="RFC 6376 3.6.2.1")
            continue
        entry: dict[str, Any] = {"selector": selector, "name": name, "records": records}
        if txt.canonical_name and txt.canonical_name.rstrip(".").lower() != name.lower():
            entry["cname"] = txt.canonical_name.rstrip(".")
        found.append(entry)
        if len(records) > 1:
            result.add("dkim.syntax", Status.FAIL, f"{len(records)} key records at {name}",
                       subject=name, reference="RFC 6376 3.6.2.2")
        for finding in evaluate_dkim_key_record(records[0], subject=name):
            result.findings.append(finding)
    result.facts = {"selectors_probed": selectors, "keys": found}
    if not found and not any(f.id == "dkim.not-found" for f in result.findings):
        failed = any(f.id == "dns.lookup-failed" for f in result.findings)
        if not failed:
            result.add(
                "dkim.not-found", Status.WARN,
                f"no DKIM key found at {len(selectors)} common selectors",
                detail="DKIM selectors cannot be listed; pass --dkim-selector S to check yours.",
                reference="RFC 6376 3.6.2.1",
            )
    return result
