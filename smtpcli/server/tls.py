"""Server TLS contexts: from cert/key files, or a throwaway self-signed certificate."""

from __future__ import annotations

import hashlib
import os
import ssl
import tempfile
from dataclasses import dataclass

from smtpcli.errors import UsageError


@dataclass
class ServerTls:
    context: ssl.SSLContext
    fingerprint_sha256: str  # colon-separated hex of the leaf certificate's DER
    subject: str
    self_signed: bool
    cert_pem: bytes  # so a client can trust the throwaway certificate (--cafile)


def fingerprint(der: bytes) -> str:
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def _context(cert_path: str, key_path: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # Senders do not present client certificates; aiosmtpd warns otherwise.
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


def load_tls(cert_path: str, key_path: str | None) -> ServerTls:
    """Load a certificate chain (PEM) and key; UsageError when they do not fit."""
    try:
        ctx = _context(cert_path, key_path)
        with open(cert_path, "rb") as fh:
            pem = fh.read()
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"cannot load --tls-cert {cert_path!r}: {reason}") from None
    from cryptography import x509

    leaf = x509.load_pem_x509_certificate(pem)
    from cryptography.hazmat.primitives.serialization import Encoding

    der = leaf.public_bytes(Encoding.DER)
    return ServerTls(ctx, fingerprint(der), leaf.subject.rfc4514_string(), False, pem)


def self_signed(hostname: str) -> ServerTls:
    """A fresh EC P-256 certificate for ``hostname``, localhost, 127.0.0.1 and ::1 (1 day)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    alt: list[x509.GeneralName] = [x509.DNSName(hostname), x509.DNSName("localhost")]
    alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        # Long enough that probing it does not report an expiring certificate (the default
        # warning threshold is 14 days); it is thrown away when serve stops.
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # ssl can only load from files: write them to a private directory, load, delete.
    with tempfile.TemporaryDirectory(prefix="smtpcli-tls-") as tmp:
        cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        with open(cert_path, "wb") as fh:
            fh.write(pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key_pem)
        ctx = _context(cert_path, key_path)
    der = cert.public_bytes(serialization.Encoding.DER)
    return ServerTls(ctx, fingerprint(der), name.rfc4514_string(), True, pem)
