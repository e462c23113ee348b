"""TLS: client contexts from user options, and the facts of an established TLS session.

Facts: protocol, cipher, the certificate chain (subject, SANs, issuer, validity, fingerprints),
the verification result and error, and whether the host name matches (RFC 6125 6.4).

With verification on (the default) OpenSSL decides during the handshake and a failure raises
``TlsError`` carrying what is known. With ``insecure`` the handshake accepts anything and the
chain is checked afterwards with ``cryptography``'s verifier, so the facts still say whether it
*would* have verified (``probe`` relies on this to report certificate problems and carry on).
``cryptography`` is imported only when certificate facts are built.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import os
import ssl
import sys
import warnings
from typing import TYPE_CHECKING, Any

from smtpcli.errors import TlsError, UsageError
from smtpcli.records import FrozenRecord, Record

if TYPE_CHECKING:
    from cryptography import x509

# Names only: the ssl.TLSVersion members are looked up when a context is made, so that a
# plain-text send never loads ssl (see smtpcli/cli/entry.py).
TLS_VERSIONS = {"1.0": "TLSv1", "1.1": "TLSv1_1", "1.2": "TLSv1_2", "1.3": "TLSv1_3"}


class TlsOptions(FrozenRecord):
    """What the user asked for: trust anchors, verification, SNI, minimum version, client cert."""

    __slots__ = ("verify", "cafile", "sni", "min_version", "client_cert", "client_key",
                 "unverified_because")
    verify: bool
    cafile: str | None
    sni: str | None
    min_version: str | None
    client_cert: str | None
    client_key: str | None
    # Why verification is off, as the transcript says it (only read when ``verify`` is False).
    unverified_because: str

    def __init__(self, verify: bool = True, cafile: str | None = None, sni: str | None = None,
                 min_version: str | None = None, client_cert: str | None = None,
                 client_key: str | None = None,
                 unverified_because: str = "--insecure") -> None:
        self._set(verify=verify, cafile=cafile, sni=sni, min_version=min_version,
                  client_cert=client_cert, client_key=client_key,
                  unverified_because=unverified_because)


def unverified_context() -> ssl.SSLContext:
    """A client context that verifies nothing: what ``create_default_context`` gives, minus the
    checks and minus loading the system trust store, which only a verifying handshake reads
    (OpenSSL 3 takes 10-20 ms to parse it). Whoever wants the chain judged does it afterwards
    (``verify_chain``)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    keylog = os.environ.get("SSLKEYLOGFILE")  # as create_default_context honours it
    if keylog and not sys.flags.ignore_environment:
        ctx.keylog_filename = keylog
    return ctx


def make_context(options: TlsOptions) -> ssl.SSLContext:
    """An ``SSLContext`` for a client; bad files or versions are usage errors (exit 2)."""
    ctx = ssl.create_default_context() if options.verify else unverified_context()
    if options.cafile:
        try:
            ctx.load_verify_locations(cafile=options.cafile)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"cannot load CA file {options.cafile}: {exc}") from None
    if options.min_version:
        name = TLS_VERSIONS.get(options.min_version)
        if name is None:
            raise UsageError(
                f"unknown TLS version {options.min_version!r} (use one of {', '.join(TLS_VERSIONS)})"
            )
        version = ssl.TLSVersion[name]
        if version < ssl.TLSVersion.TLSv1_2:
            # OpenSSL 3 refuses TLS < 1.2 at the default security level; lowering the
            # minimum is only meaningful with the level lowered too.
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = version
    if options.client_cert:
        try:
            ctx.load_cert_chain(options.client_cert, options.client_key)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"cannot load client certificate {options.client_cert}: {exc}") from None
    return ctx


class CertInfo(Record):
    """One certificate of the chain, as facts."""

    __slots__ = ("subject", "issuer", "sans", "not_before", "not_after", "serial", "sha256",
                 "sha1", "key", "signature_algorithm", "self_signed", "expired", "not_yet_valid")

    def __init__(self, *, subject: str, issuer: str, sans: list[str], not_before: str,
                 not_after: str, serial: str, sha256: str, sha1: str, key: str,
                 signature_algorithm: str | None, self_signed: bool, expired: bool,
                 not_yet_valid: bool) -> None:
        self.subject = subject
        self.issuer = issuer
        self.sans = sans
        self.not_before = not_before
        self.not_after = not_after
        self.serial = serial
        self.sha256 = sha256
        self.sha1 = sha1
        self.key = key
        self.signature_algorithm = signature_algorithm
        self.self_signed = self_signed
        self.expired = expired
        self.not_yet_valid = not_yet_valid

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class TlsInfo(Record):
    """Facts of one TLS session."""

    __slots__ = ("protocol", "cipher", "cipher_bits", "server_name", "chain", "verified",
                 "verify_error", "verification", "hostname_match")

    def __init__(self, protocol: str | None = None, cipher: str | None = None,
                 cipher_bits: int | None = None, server_name: str | None = None) -> None:
        self.protocol = protocol
        self.cipher = cipher
        self.cipher_bits = cipher_bits
        self.server_name = server_name
        self.chain: list[CertInfo] = []
        self.verified: bool | None = None
        self.verify_error: str | None = None
        # "openssl" (handshake decided) or "after-handshake" (insecure)
        self.verification = "openssl"
        self.hostname_match: bool | None = None

    @property
    def leaf(self) -> CertInfo | None:
        return self.chain[0] if self.chain else None

    def problem_id(self) -> str | None:
        """The finding id of the most specific certificate problem, None when verified."""
        if self.verified:
            return None
        leaf = self.leaf
        if leaf is not None:
            if leaf.expired:
                return "tls.cert-expired"
            if leaf.not_yet_valid:
                return "tls.cert-not-yet-valid"
            if leaf.self_signed and len(self.chain) == 1:
                return "tls.cert-self-signed"
        if self.hostname_match is False:
            return "tls.hostname-mismatch"
        return classify_verify_error(self.verify_error or "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol, "cipher": self.cipher, "cipher_bits": self.cipher_bits,
            "server_name": self.server_name, "verified": self.verified,
            "verify_error": self.verify_error, "verification": self.verification,
            "hostname_match": self.hostname_match,
            "chain": [c.to_dict() for c in self.chain],
        }


def _name(n: x509.Name) -> str:
    return n.rfc4514_string()


def cert_info(der: bytes, now: dt.datetime | None = None) -> CertInfo:
    """Parse one DER certificate into facts."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    cert = x509.load_der_x509_certificate(der)
    now = now or dt.datetime.now(dt.UTC)
    sans: list[str] = []
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [f"DNS:{n}" for n in ext.get_values_for_type(x509.DNSName)]
        sans += [f"IP:{a}" for a in ext.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    pub = cert.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        key = f"RSA {pub.key_size}"
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        key = f"EC {pub.curve.name}"
    else:
        key = type(pub).__name__.lstrip("_")
    sig = cert.signature_hash_algorithm
    return CertInfo(
        subject=_name(cert.subject), issuer=_name(cert.issuer), sans=sans,
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=cert.not_valid_after_utc.isoformat(),
        serial=format(cert.serial_number, "x"),
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        sha1=cert.fingerprint(hashes.SHA1()).hex(),  # noqa: S303 - a fingerprint, not security
        key=key, signature_algorithm=sig.name if sig else None,
        self_signed=cert.subject == cert.issuer,
        expired=cert.not_valid_after_utc < now, not_yet_valid=cert.not_valid_before_utc > now,
    )


def hostname_matches(sans: list[str], hostname: str) -> bool:
    """RFC 6125 6.4: exact DNS-ID match, or a wildcard in the left-most label only."""
    host = hostname.rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for san in sans:
        kind, _, value = san.partition(":")
        if kind == "IP":
            if ip is not None and ipaddress.ip_address(value) == ip:
                return True
            continue
        if ip is not None:
            continue
        pattern = value.rstrip(".").lower()
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host:
            # The wildcard stands for exactly one label (RFC 6125 6.4.3).
            if host.split(".", 1)[1] == pattern[2:]:
                return True
    return False


def peer_chain(sock: ssl.SSLSocket, verified: bool = False) -> list[bytes]:
    """DER certificates the server sent, leaf first. Python 3.13 has public API for this; 3.11
    only the private ``_sslobj`` methods, so fall back to the leaf when they are missing."""
    sslobj = getattr(sock, "_sslobj", None)
    getter = None
    if sslobj is not None:
        getter = getattr(sslobj, "get_verified_chain" if verified else "get_unverified_chain", None)
        if getter is None:
            getter = getattr(sslobj, "get_unverified_chain", None)
    if getter is not None:
        try:
            certs = getter() or []
            return [c.public_bytes(ssl._ssl.ENCODING_DER) for c in certs]  # type: ignore[attr-defined]
        except (ssl.SSLError, AttributeError, ValueError):
            pass
    leaf = sock.getpeercert(binary_form=True)
    return [leaf] if leaf else []


@functools.lru_cache(maxsize=8)
def _trust_anchors(cafile: str | None) -> tuple[Any, ...]:
    """CA certificates from ``cafile`` plus the system store, parsed once per process."""
    from cryptography import x509

    paths = ssl.get_default_verify_paths()
    anchors: list[Any] = []
    # Like OpenSSL with load_verify_locations: an explicit CA file adds to the system store.
    for path in (cafile, paths.cafile):
        if not path:
            continue
        try:
            with open(path, "rb") as fh, warnings.catch_warnings():
                # Some system CAs have negative serials; cryptography warns about each one.
                warnings.simplefilter("ignore")
                anchors.extend(x509.load_pem_x509_certificates(fh.read()))
        except (OSError, ValueError):
            continue
    return tuple(anchors)


def verify_chain(
    chain: list[bytes], hostname: str, cafile: str | None = None
) -> tuple[bool, str | None]:
    """Verify a DER chain (leaf first) for ``hostname`` with ``cryptography``'s verifier, against
    ``cafile`` or the system trust store. Used after an unverified (insecure) handshake."""
    from cryptography import x509
    from cryptography.x509.verification import (
        Criticality,
        ExtensionPolicy,
        PolicyBuilder,
        Store,
        VerificationError,
    )

    if not chain:
        return False, "the server sent no certificate"
    anchors = _trust_anchors(cafile)
    if not anchors:
        return False, "no trust anchors available"
    certs = [x509.load_der_x509_certificate(der) for der in chain]
    try:
        ip = ipaddress.ip_address(hostname)
        subject: x509.DNSName | x509.IPAddress = x509.IPAddress(ip)
    except ValueError:
        subject = x509.DNSName(hostname.rstrip("."))
    # Judge the leaf as OpenSSL does in the real handshake (chain, validity, name), not by the
    # stricter CA/B Forum profile, which rejects e.g. a critical subjectAltName that OpenSSL and
    # every MTA accept; a subjectAltName is still required for the name check (RFC 6125 6.4.4).
    ee_policy = ExtensionPolicy.permit_all().require_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    try:
        verifier = (
            PolicyBuilder().store(Store(list(anchors)))
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
            .build_server_verifier(subject)
        )
        verifier.verify(certs[0], certs[1:])
    except VerificationError as exc:
        return False, _verification_text(str(exc), certs[0], hostname)
    except ValueError as exc:
        return False, f"unusable certificate: {exc}"
    return True, None


def _verification_text(message: str, leaf: Any, hostname: str) -> str:
    """cryptography's verifier errors in the words OpenSSL uses for the same failures, so
    --insecure facts read like a verifying handshake's (and classify_verify_error maps them)."""
    text = message.split(" (encountered processing", 1)[0]
    low = text.lower()
    if "candidates exhausted" in low:
        if leaf.issuer == leaf.subject:
            return "self-signed certificate (not issued by a trusted CA)"
        return "unable to get local issuer certificate (no chain to a trusted CA)"
    if "not valid at validation time" in low:
        now = dt.datetime.now(dt.UTC)
        if leaf.not_valid_before_utc > now:
            return f"certificate is not yet valid (from {leaf.not_valid_before_utc:%Y-%m-%d})"
        return f"certificate has expired ({leaf.not_valid_after_utc:%Y-%m-%d})"
    if "subjectaltname" in low and "match" in low:
        return f"hostname mismatch: the certificate is not valid for {hostname}"
    return text


def collect(
    sock: ssl.SSLSocket, hostname: str, options: TlsOptions, *, with_chain: bool = True
) -> TlsInfo:
    """Facts about an established TLS session on ``sock`` for ``hostname``."""
    cipher = sock.cipher()
    info = TlsInfo(
        protocol=sock.version(), cipher=cipher[0] if cipher else None,
        cipher_bits=cipher[2] if cipher else None, server_name=hostname,
    )
    chain = peer_chain(sock, options.verify) if with_chain else []
    if with_chain:
        info.chain = [cert_info(der) for der in chain]
    if options.verify:
        # The handshake succeeded with CERT_REQUIRED and check_hostname: OpenSSL verified both.
        info.verified = True
        info.hostname_match = True
    else:
        info.verification = "after-handshake"
        if chain:
            info.verified, info.verify_error = verify_chain(chain, hostname, options.cafile)
            info.hostname_match = hostname_matches(info.chain[0].sans, hostname) if info.chain else None
        else:
            info.verified, info.verify_error = False, "the server sent no certificate"
    return info


def classify_verify_error(message: str) -> str:
    """A stable finding id for a verification error text (OpenSSL's or cryptography's)."""
    text = message.lower()
    if "hostname mismatch" in text or "not valid for" in text or "ip address mismatch" in text \
            or "no matching subjectaltname" in text or "subjectaltname" in text and "match" in text:
        return "tls.hostname-mismatch"
    if "expired" in text or "not valid at validation time" in text:
        return "tls.cert-expired"
    if "not yet valid" in text:
        return "tls.cert-not-yet-valid"
    if "self-signed" in text or "self signed" in text:
        return "tls.cert-self-signed"
    return "tls.cert-untrusted"


def verification_error(exc: ssl.SSLCertVerificationError, where: str) -> TlsError:
    """Turn OpenSSL's verification failure into one clear TlsError line."""
    reason = exc.verify_message or exc.reason or str(exc)
    err = TlsError(
        f"certificate verification failed for {where}: {reason}",
        hint="trust its CA with --cafile, or skip verification with --insecure",
    )
    err.finding_id = classify_verify_error(str(reason))  # type: ignore[attr-defined]
    return err
