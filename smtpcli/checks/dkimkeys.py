"""DKIM keys: generation (RSA, Ed25519), the DNS TXT record and its zone-file line, loading.

Key record format: RFC 6376 3.6.1 (RSA, p= is the base64 SubjectPublicKeyInfo) and RFC 8463 3
(Ed25519, p= is the base64 of the raw 32-byte public key). Private keys: RSA as PKCS#8 PEM,
Ed25519 as the base64 of the 32-byte seed (the form dkimpy signs with).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

TXT_CHUNK = 255  # RFC 1035 3.3: a character-string holds at most 255 octets


@dataclass
class KeyPair:
    key_type: str  # rsa | ed25519
    private: bytes  # what goes into the key file
    public_b64: str  # the p= value
    bits: int

    def txt_value(self) -> str:
        return f"v=DKIM1; k={self.key_type}; p={self.public_b64}"


def generate(key_type: str = "rsa", bits: int = 2048) -> KeyPair:
    """A new key pair; RSA keys between 1024 and 4096 bits (RFC 8301 3.2)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if key_type == "ed25519":
        priv = ed25519.Ed25519PrivateKey.generate()
        seed = priv.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                  serialization.NoEncryption())
        pub = priv.public_key().public_bytes(serialization.Encoding.Raw,
                                             serialization.PublicFormat.Raw)
        return KeyPair("ed25519", base64.b64encode(seed) + b"\n",
                       base64.b64encode(pub).decode(), 256)
    if key_type != "rsa":
        raise ValueError(f"unknown key type {key_type!r} (rsa or ed25519)")
    if not 1024 <= bits <= 4096:
        raise ValueError("RSA keys must be 1024 to 4096 bits")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    spki = rsa_key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    return KeyPair("rsa", pem, base64.b64encode(spki).decode(), bits)


def split_txt(value: str, size: int = TXT_CHUNK) -> list[str]:
    """Split a TXT value into character-strings of at most ``size`` octets."""
    data = value.encode("ascii")
    return [data[i : i + size].decode("ascii") for i in range(0, len(data), size)] or [""]


def record_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain.rstrip('.')}"


def zone_line(selector: str, domain: str, value: str, ttl: int | None = None) -> str:
    """``sel._domainkey.example.com. 3600 IN TXT ( "..." "..." )``."""
    chunks = " ".join(f'"{c}"' for c in split_txt(value))
    ttl_part = f" {ttl}" if ttl else ""
    return f"{record_name(selector, domain)}.{ttl_part} IN TXT ( {chunks} )"


def write_private_key(path: Path, data: bytes, *, force: bool = False) -> None:
    """Write with mode 0600 from the start (never briefly world-readable); refuse to overwrite."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def load_private_key(data: bytes) -> tuple[str, bytes]:
    """(signature algorithm, key bytes for dkimpy) from a key file: PEM RSA/Ed25519 or a seed."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text, password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a usable PEM private key: {exc}") from None
        if isinstance(key, rsa.RSAPrivateKey):
            return "rsa-sha256", text
        if isinstance(key, ed25519.Ed25519PrivateKey):
            seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                     serialization.NoEncryption())
            return "ed25519-sha256", base64.b64encode(seed)
        raise ValueError("only RSA and Ed25519 keys can sign DKIM")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError("neither a PEM key nor a base64 Ed25519 seed") from None
    if len(raw) != 32:
        raise ValueError("a base64 Ed25519 key must decode to 32 bytes")
    return "ed25519-sha256", text
