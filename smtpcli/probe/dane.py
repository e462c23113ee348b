"""DANE for SMTP (RFC 7672, RFC 6698, RFC 7671): match TLSA records against a live chain.

Only what SMTP DANE uses is honoured: certificate usages 2 (DANE-TA) and 3 (DANE-EE); usages 0 and
1 (PKIX-TA/PKIX-EE) are "unusable" for SMTP (RFC 7672 3.1.3). Selectors 0 (full certificate) and
1 (SubjectPublicKeyInfo); matching types 0 (exact), 1 (SHA-256) and 2 (SHA-512).

Pure functions over DER bytes; ``cryptography`` is imported only when a chain is examined.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Any

USAGE_NAMES = {0: "PKIX-TA", 1: "PKIX-EE", 2: "DANE-TA", 3: "DANE-EE"}
SELECTOR_NAMES = {0: "Cert", 1: "SPKI"}
MTYPE_NAMES = {0: "Full", 1: "SHA2-256", 2: "SHA2-512"}


def tlsa_name(host: str, port: int = 25) -> str:
    """``_25._tcp.mx.example.`` (RFC 6698 3, RFC 7672 2.2.3: the TLSA base domain is the MX host)."""
    return f"_{port}._tcp.{host.rstrip('.')}."


@dataclass(frozen=True)
class TlsaRecord:
    """One TLSA record: usage, selector, matching type and association data."""

    usage: int
    selector: int
    mtype: int
    data: bytes

    @classmethod
    def from_text(cls, text: str) -> TlsaRecord:
        """Parse presentation format ``3 1 1 ab12...`` (hex may be split by spaces)."""
        parts = text.split()
        if len(parts) < 4:
            raise ValueError(f"TLSA record needs 4 fields: {text!r}")
        try:
            usage, selector, mtype = (int(p) for p in parts[:3])
            data = bytes.fromhex("".join(parts[3:]))
        except ValueError as exc:
            raise ValueError(f"invalid TLSA record {text!r}: {exc}") from None
        if not all(0 <= v <= 255 for v in (usage, selector, mtype)):
            raise ValueError(f"invalid TLSA record {text!r}: field out of range")
        return cls(usage, selector, mtype, data)

    @classmethod
    def from_rdata(cls, rdata: Any) -> TlsaRecord:
        """From a dnspython TLSA rdata."""
        return cls(int(rdata.usage), int(rdata.selector), int(rdata.mtype), bytes(rdata.cert))

    @property
    def usable(self) -> bool:
        """RFC 7672 3.1.3 / RFC 7671 4: only usages 2 and 3, known selectors and matching types."""
        return self.usage in (2, 3) and self.selector in SELECTOR_NAMES and self.mtype in MTYPE_NAMES

    def to_text(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex()}"

    def describe(self) -> str:
        names = (
            USAGE_NAMES.get(self.usage, str(self.usage)),
            SELECTOR_NAMES.get(self.selector, str(self.selector)),
            MTYPE_NAMES.get(self.mtype, str(self.mtype)),
        )
        return " ".join(names)


def selected_bytes(cert_der: bytes, selector: int) -> bytes:
    """The bytes a selector picks (RFC 6698 2.1.2): the certificate or its SubjectPublicKeyInfo."""
    if selector == 0:
        return cert_der
    if selector == 1:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        cert = x509.load_der_x509_certificate(cert_der)
        return cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    raise ValueError(f"unknown TLSA selector {selector}")


def association_data(cert_der: bytes, selector: int, mtype: int) -> bytes:
    """What a TLSA record with this selector and matching type must hold for ``cert_der``."""
    raw = selected_bytes(cert_der, selector)
    if mtype == 0:
        return raw
    if mtype == 1:
        return hashlib.sha256(raw).digest()
    if mtype == 2:
        return hashlib.sha512(raw).digest()
    raise ValueError(f"unknown TLSA matching type {mtype}")


def make_tlsa(cert_der: bytes, usage: int = 3, selector: int = 1, mtype: int = 1) -> TlsaRecord:
    """The TLSA record that matches ``cert_der`` (for ``3 1 1`` publishing and for tests)."""
    return TlsaRecord(usage, selector, mtype, association_data(cert_der, selector, mtype))


class DaneState(enum.Enum):
    MATCH = "match"            # a usable record matched the chain
    MISMATCH = "mismatch"      # usable records, none matched
    UNUSABLE = "unusable"      # records exist but none is usable for SMTP (RFC 7672 3.1.3)
    NO_RECORDS = "no-records"


@dataclass
class DaneResult:
    """The outcome of matching a TLSA RRset against a chain (leaf first)."""

    state: DaneState
    matched: list[dict[str, Any]] = field(default_factory=list)
    unusable: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state is DaneState.MATCH

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state.value, "matched": self.matched}
        if self.unusable:
            out["unusable"] = self.unusable
        if self.notes:
            out["notes"] = self.notes
        return out


def _issued_by(child_der: bytes, parent_der: bytes) -> bool:
    """True when ``parent`` signed ``child`` (name chaining plus signature check)."""
    from cryptography import x509

    child = x509.load_der_x509_certificate(child_der)
    parent = x509.load_der_x509_certificate(parent_der)
    try:
        child.verify_directly_issued_by(parent)
    except Exception:  # wrong issuer name, bad signature, unsupported key type: not issued by
        return False
    return True


def _chain_links(chain: list[bytes], depth: int) -> bool:
    """Every certificate from the leaf up to ``chain[depth]`` is issued by the next one."""
    return all(_issued_by(chain[i], chain[i + 1]) for i in range(depth))


def match_tlsa(records: list[TlsaRecord], chain: list[bytes]) -> DaneResult:
    """Match TLSA records against the presented chain (DER, leaf first).

    * DANE-EE (3): the leaf matches; no name or expiry checks apply (RFC 7672 3.1.1).
    * DANE-TA (2): some certificate in the presented chain above the leaf matches and the chain
      links from the leaf up to it by signature (RFC 7671 5.2.2; the TA must be presented, RFC
      7672 3.1.2). The peer-name check for DANE-TA is the caller's job (RFC 7672 3.2.2).
    """
    if not records:
        return DaneResult(DaneState.NO_RECORDS)
    usable = [r for r in records if r.usable]
    result = DaneResult(DaneState.MISMATCH)
    result.unusable = [r.to_text() for r in records if not r.usable]
    if not usable:
        result.state = DaneState.UNUSABLE
        return result
    if not chain:
        result.notes.append("no certificate presented")
        return result
    for record in usable:
        depths = [0] if record.usage == 3 else list(range(1, len(chain)))
        for depth in depths:
            try:
                want = association_data(chain[depth], record.selector, record.mtype)
            except ValueError as exc:
                result.notes.append(f"certificate at depth {depth} unreadable: {exc}")
                continue
            if want != record.data:
                continue
            if record.usage == 2 and not _chain_links(chain, depth):
                result.notes.append(
                    f"{record.describe()} matches depth {depth}, but the chain does not link to it"
                )
                continue
            result.matched.append(
                {"record": record.to_text(), "usage": USAGE_NAMES[record.usage], "depth": depth}
            )
    if result.matched:
        result.state = DaneState.MATCH
    return result
