"""DKIM-sign a message before sending (RFC 6376), with dkimpy (imported only here).

RSA keys (PEM, PKCS#1 or PKCS#8) sign with rsa-sha256; Ed25519 keys (PEM PKCS#8, or dkimpy's raw
base64 form) with ed25519-sha256 (RFC 8463).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from smtpcli.errors import UsageError

# RFC 6376 5.4.1 recommends these; From is mandatory. Listing To/Cc/Subject/Date/Message-ID
# protects what a recipient sees; MIME headers keep the body's interpretation fixed.
DEFAULT_HEADERS = (
    b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to",
    b"mime-version", b"content-type", b"content-transfer-encoding",
)


@dataclass(frozen=True)
class DkimOptions:
    key_file: str
    selector: str
    domain: str
    algorithm: str | None = None  # None: from the key type


def _load_key(path: str) -> tuple[bytes, bytes]:
    """(key bytes in the form dkimpy wants, signature algorithm)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read DKIM key {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN" not in raw:
        try:
            if len(base64.b64decode(raw.strip(), validate=True)) == 32:
                return raw.strip(), b"ed25519-sha256"
        except ValueError:
            pass
        raise UsageError(f"DKIM key {path} is neither PEM nor a base64 Ed25519 key")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    try:
        key = serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"cannot load DKIM key {path}: {exc}") from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        seed = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return base64.b64encode(seed), b"ed25519-sha256"
    if isinstance(key, rsa.RSAPrivateKey):
        return raw, b"rsa-sha256"
    raise UsageError(f"DKIM key {path}: only RSA and Ed25519 keys can sign (RFC 6376, RFC 8463)")


def line_ending(message: bytes) -> bytes:
    """The message's own line ending (that of its first line), for the added header field:
    a file with LF lines stays all-LF, a wire-format one all-CRLF."""
    end = message.find(b"\n")
    return b"\r\n" if end < 0 or message[end - 1 : end] == b"\r" else b"\n"


def sign(message: bytes, options: DkimOptions) -> bytes:
    """The message with a DKIM-Signature header prepended."""
    import dkim

    key, algorithm = _load_key(options.key_file)
    if options.algorithm:
        algorithm = options.algorithm.encode()
    present = {
        line.split(b":", 1)[0].strip().lower()
        for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        if line[:1] not in (b" ", b"\t") and b":" in line
    }
    headers = [h for h in DEFAULT_HEADERS if h in present]
    try:
        signature = dkim.sign(
            message, options.selector.encode(), options.domain.encode(), key,
            signature_algorithm=algorithm, include_headers=headers, linesep=b"\r\n",
        )
    except dkim.DKIMException as exc:
        raise UsageError(f"DKIM signing failed: {exc}") from None
    return bytes(signature) + message
