"""Verify every DKIM-Signature with dkimpy and say why each one failed (RFC 6376 6).

The key is looked up here first (through the configured resolver), so "key not found",
"key revoked", "lookup failed" and "bad key" are told apart before dkimpy verifies with that
same key text; dkimpy's own errors then separate "body hash mismatch" from "signature invalid".
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from smtpcli.inspection.lookups import OfflineError, TxtLookups, name_problem
from smtpcli.inspection.parse import ParsedMessage
from smtpcli.results import Finding, Status

REF = "RFC 6376"
MIN_KEY_BITS = 1024  # RFC 8301 3.2: verifiers must not accept RSA keys shorter than 1024 bits


@dataclass
class DkimResult:
    """One DKIM-Signature and its outcome."""

    index: int
    result: str  # pass | fail | permerror | temperror | unknown
    reason: str  # pass, body-hash-mismatch, signature-invalid, key-not-found, ...
    detail: str = ""
    domain: str | None = None
    selector: str | None = None
    algorithm: str | None = None
    canonicalization: str | None = None
    identity: str | None = None
    signed_headers: list[str] = field(default_factory=list)
    body_length: int | None = None
    body_unsigned_bytes: int | None = None
    key_type: str | None = None
    key_bits: int | None = None
    key_name: str | None = None
    timestamp: int | None = None
    expiration: int | None = None
    b_prefix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def _tags(value: bytes) -> dict[bytes, bytes]:
    """Tolerant tag=value split (dkimpy's parser raises on the first oddity)."""
    tags: dict[bytes, bytes] = {}
    for part in re.sub(rb"\s+", b"", value).split(b";"):
        key, sep, val = part.partition(b"=")
        if sep and key:
            tags.setdefault(key.lower(), val)
    return tags


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")


def _int(value: bytes | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def signature_headers(raw: bytes) -> list[bytes]:
    """The raw values of every DKIM-Signature field, top to bottom (as dkimpy indexes them)."""
    import dkim

    try:
        headers, _ = dkim.rfc822_parse(raw)
    except Exception:  # dkimpy raises IndexError on a leading continuation line, among others
        return []
    return [bytes(v) for n, v in headers if n.lower() == b"dkim-signature"]


def _describe(res: DkimResult, tags: dict[bytes, bytes], body: bytes) -> None:
    res.domain = (_text(tags.get(b"d")) or "").lower() or None
    res.selector = _text(tags.get(b"s"))
    res.algorithm = _text(tags.get(b"a"))
    res.canonicalization = _text(tags.get(b"c")) or "simple/simple"
    res.identity = _text(tags.get(b"i"))
    res.signed_headers = [h.lower() for h in (_text(tags.get(b"h")) or "").split(":") if h]
    res.body_length = _int(tags.get(b"l"))
    res.timestamp = _int(tags.get(b"t"))
    res.expiration = _int(tags.get(b"x"))
    b = _text(tags.get(b"b"))
    res.b_prefix = b[:8] if b else None
    if res.selector and res.domain:
        res.key_name = f"{res.selector}._domainkey.{res.domain}"
    if res.body_length is not None:
        try:
            import dkim.canonicalization as canon

            policy = canon.CanonicalizationPolicy.from_c_value(
                (res.canonicalization or "simple/simple").encode())
            size = len(policy.canonicalize_body(body))
            res.body_unsigned_bytes = max(0, size - res.body_length)
        except Exception:  # an invalid c= is reported by the verification itself
            res.body_unsigned_bytes = None


def key_record_state(text: str) -> tuple[str, str, str | None, int | None]:
    """Classify a key record: (reason, detail, key type, bits); reason 'ok' when usable."""
    import dkim

    tags = {k.decode(): v.decode("utf-8", "replace") for k, v in _tags(text.encode()).items()}
    if "p" in tags and tags["p"] == "":
        # RFC 6376 3.6.1: an empty p= means the key has been revoked.
        return "key-revoked", "the key record has an empty p= (revoked)", tags.get("k", "rsa"), None
    try:
        _, bits, ktag, _ = dkim.evaluate_pk("key", text.encode("utf-8", "replace"))
    except dkim.NaClNotFoundError:
        return ("key-unsupported", "Ed25519 keys need the pynacl package (pip install pynacl)",
                tags.get("k"), None)
    except dkim.DKIMException as exc:
        return "key-invalid", str(exc), tags.get("k"), None
    except Exception as exc:  # malformed base64 and friends
        return "key-invalid", f"{type(exc).__name__}: {exc}", tags.get("k"), None
    return "ok", "", ktag.decode() if isinstance(ktag, bytes) else str(ktag), bits


def verify_signature(raw: bytes, index: int, tag_value: bytes, body: bytes,
                     lookups: TxtLookups) -> DkimResult:
    """Verify the ``index``-th DKIM-Signature of ``raw``."""
    import dkim

    tags = _tags(tag_value)
    res = DkimResult(index=index, result="permerror", reason="malformed")
    _describe(res, tags, body)
    missing = [t for t in ("v", "a", "b", "bh", "d", "h", "s") if t.encode() not in tags]
    if missing:
        res.detail = "missing tag(s): " + ", ".join(missing)
        return res
    bad_name = name_problem(f"{res.selector or ''}._domainkey.{res.domain or ''}")
    if not res.selector or not res.domain or bad_name:
        # RFC 6376 3.5: s= and d= must make a DNS name; a signature without one is malformed.
        empty = "s= (selector)" if not res.selector else "d= (domain)" if not res.domain else ""
        res.detail = f"{empty} is empty" if empty else str(bad_name)
        return res
    if res.expiration is not None and res.expiration < time.time():
        res.reason, res.detail = "expired", f"x= {res.expiration} is in the past"
        return res
    assert res.key_name is not None
    try:
        lookup = lookups.txt(res.key_name)
    except OfflineError:
        res.result, res.reason, res.detail = "unknown", "offline", "key not looked up (--offline)"
        return res
    if lookup.failed:
        res.result, res.reason = "temperror", "key-lookup-failed"
        res.detail = f"{res.key_name}: {lookup.error}"
        return res
    if not lookup.ok or not lookup.texts:
        res.reason = "key-not-found"
        res.detail = f"no TXT record at {res.key_name} ({lookup.state.value})"
        return res
    if len(lookup.texts) > 1:
        res.detail = f"{len(lookup.texts)} TXT records at {res.key_name}; the first is used. "
    key_text = lookup.texts[0]
    reason, detail, ktype, bits = key_record_state(key_text)
    res.key_type, res.key_bits = ktype, bits
    if reason != "ok":
        res.reason, res.detail = reason, res.detail + detail
        if reason == "key-unsupported":
            res.result = "unknown"  # not a verdict on the message
        return res
    if ktype == "rsa" and bits is not None and bits < MIN_KEY_BITS:
        res.reason = "key-too-small"
        res.detail = f"{bits}-bit RSA key; verifiers refuse keys under {MIN_KEY_BITS} bits"
        return res

    def dnsfunc(name: bytes | str, timeout: float = 5) -> bytes:
        return key_text.encode("utf-8", "replace")

    try:
        verifier = dkim.DKIM(raw, minkey=MIN_KEY_BITS)
        ok = verifier.verify(idx=index, dnsfunc=dnsfunc)
    except dkim.DKIMException as exc:
        text = str(exc)
        if "body hash mismatch" in text:
            res.result, res.reason = "fail", "body-hash-mismatch"
            res.detail += "the body was changed after signing (bh= does not match)"
        elif "too small" in text:
            res.reason, res.detail = "key-too-small", res.detail + text
        else:
            res.detail += text
        return res
    except Exception as exc:  # dkimpy on hostile input: report, never crash the analysis
        res.detail += f"{type(exc).__name__}: {exc}"
        return res
    if ok:
        res.result, res.reason = "pass", "pass"
    else:
        res.result, res.reason = "fail", "signature-invalid"
        res.detail += ("the body hash matches but the header signature does not: a signed "
                       "header was changed, or the key does not match")
    return res


def verify_all(msg: ParsedMessage, lookups: TxtLookups) -> list[DkimResult]:
    """Every DKIM-Signature of the message, verified."""
    values = signature_headers(msg.raw)
    if not values and msg.get_all("dkim-signature"):
        # dkimpy could not split the header; report each signature as malformed.
        return [DkimResult(i, "permerror", "malformed", "the header block does not parse")
                for i, _ in enumerate(msg.get_all("dkim-signature"))]
    return [verify_signature(msg.raw, i, v, msg.body, lookups) for i, v in enumerate(values)]


_FINDING = {
    "pass": ("dkim.pass", Status.OK, "valid signature"),
    "body-hash-mismatch": ("dkim.body-hash-mismatch", Status.FAIL, "body hash mismatch"),
    "signature-invalid": ("dkim.signature-invalid", Status.FAIL, "signature does not verify"),
    "key-not-found": ("dkim.key-not-found", Status.FAIL, "no key published"),
    "key-revoked": ("dkim.key-revoked", Status.FAIL, "the key is revoked (empty p=)"),
    "key-invalid": ("dkim.key-invalid", Status.FAIL, "the published key does not parse"),
    "key-too-small": ("dkim.key-too-small", Status.FAIL, "the key is too short"),
    "key-lookup-failed": ("dkim.key-lookup-failed", Status.ERROR, "key lookup failed"),
    "key-unsupported": ("dkim.key-unsupported", Status.ERROR,
                        "cannot verify this key type here"),
    "expired": ("dkim.expired", Status.FAIL, "the signature has expired (x=)"),
    "malformed": ("dkim.malformed", Status.FAIL, "malformed DKIM-Signature"),
    "offline": ("dkim.unknown", Status.INFO, "not verified (--offline)"),
}


def dkim_findings(results: list[DkimResult]) -> list[Finding]:
    """One finding per signature plus notes on l= and weak algorithms."""
    out: list[Finding] = []
    if not results:
        out.append(Finding("dkim.none", Status.WARN, "the message has no DKIM-Signature",
                           detail="Without DKIM, DMARC can pass only through aligned SPF, "
                           "which breaks on forwarding.", reference=f"{REF} 3.5"))
        return out
    for r in results:
        fid, status, text = _FINDING.get(r.reason, ("dkim.fail", Status.FAIL, r.reason))
        label = f"d={r.domain or '?'} s={r.selector or '?'}"
        extra = ""
        if r.key_bits:
            extra = f" ({r.algorithm}, {r.key_bits}-bit key)"
        out.append(Finding(fid, status, f"{label}: {text}{extra}", detail=r.detail or None,
                           subject=r.key_name, reference=f"{REF} 6.1", data=r.to_dict()))
        if r.body_length is not None:
            unsigned = r.body_unsigned_bytes
            if unsigned:
                out.append(Finding(
                    "dkim.body-length-limit", Status.WARN,
                    f"{label}: l={r.body_length} leaves {unsigned} body bytes unsigned",
                    detail="Anything after the signed length could have been appended by anyone.",
                    reference=f"{REF} 8.2", subject=r.key_name,
                    data={"l": r.body_length, "unsigned_bytes": unsigned}))
            else:
                out.append(Finding("dkim.body-length-tag", Status.INFO,
                                   f"{label}: uses l= (body length limit)",
                                   reference=f"{REF} 8.2", subject=r.key_name))
        if r.algorithm == "rsa-sha1":
            out.append(Finding("dkim.sha1", Status.WARN, f"{label}: signed with rsa-sha1",
                               reference="RFC 8301 3.1", subject=r.key_name))
        if r.result == "pass" and "from" not in r.signed_headers:
            out.append(Finding("dkim.from-not-signed", Status.WARN,
                               f"{label}: From is not signed", reference=f"{REF} 5.4"))
    return out

