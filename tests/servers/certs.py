"""Test certificates made at test time with trustme (nothing is committed).

`TlsCerts` holds one session-wide CA and a set of server certificates (valid, wrong host name,
expired, not yet valid, self-signed), each written to disk as a `CertFiles`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: Names every "valid" server certificate covers.
SERVER_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1", "mail.example.test")


@dataclass(frozen=True)
class CertFiles:
    """One server certificate on disk: chain PEM, key PEM and the CA PEM that should verify it."""

    name: str
    cert_path: Path  # leaf + intermediates, PEM
    key_path: Path  # private key, PEM
    ca_path: Path  # the session CA (for self_signed: the cert itself)

    def server_context(self) -> ssl.SSLContext:
        """An SSLContext for a server presenting this certificate."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A verifying client SSLContext trusting `ca_path` (the session CA)."""
        return ssl.create_default_context(cafile=str(self.ca_path))


@dataclass(frozen=True)
class TlsCerts:
    """The session's CA and the stock server certificates."""

    ca: trustme.CA
    directory: Path
    ca_path: Path
    valid: CertFiles
    wrong_host: CertFiles
    expired: CertFiles
    not_yet_valid: CertFiles
    self_signed: CertFiles

    def issue(
        self,
        label: str,
        *names: str,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> CertFiles:
        """Issue another CA-signed certificate for `names` and write it as `<label>.*.pem`."""
        leaf = self.ca.issue_cert(*names, not_before=not_before, not_after=not_after)
        return _write_leaf(self.directory, label, leaf, self.ca_path)

    def client_context(self) -> ssl.SSLContext:
        """A verifying client SSLContext trusting the session CA."""
        return ssl.create_default_context(cafile=str(self.ca_path))


def _write_leaf(directory: Path, label: str, leaf: trustme.LeafCert, ca_path: Path) -> CertFiles:
    cert_path = directory / f"{label}.chain.pem"
    key_path = directory / f"{label}.key.pem"
    cert_path.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key_path))
    return CertFiles(label, cert_path, key_path, ca_path)


def _san(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def make_self_signed(directory: Path, label: str, *names: str) -> CertFiles:
    """A self-signed certificate (not from any CA); its `ca_path` is the cert itself."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(_san(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"{label}.chain.pem"
    key_path = directory / f"{label}.key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return CertFiles(label, cert_path, key_path, cert_path)


def make_tls_certs(directory: Path) -> TlsCerts:
    """Create the CA and every stock certificate under `directory`."""
    ca = trustme.CA()
    ca_path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    now = dt.datetime.now(dt.UTC)

    def leaf(
        label: str,
        *names: str,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> CertFiles:
        cert = ca.issue_cert(*names, not_before=not_before, not_after=not_after)
        return _write_leaf(directory, label, cert, ca_path)

    return TlsCerts(
        ca=ca,
        directory=directory,
        ca_path=ca_path,
        valid=leaf("valid", *SERVER_NAMES),
        wrong_host=leaf("wrong_host", "wrong.example"),
        expired=leaf(
            "expired",
            *SERVER_NAMES,
            not_before=now - dt.timedelta(days=30),
            not_after=now - dt.timedelta(days=1),
        ),
        not_yet_valid=leaf(
            "not_yet_valid",
            *SERVER_NAMES,
            not_before=now + dt.timedelta(days=1),
            not_after=now + dt.timedelta(days=30),
        ),
        self_signed=make_self_signed(directory, "self_signed", *SERVER_NAMES),
    )


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> TlsCerts:
    """Session-wide CA and stock server certificates (see `TlsCerts`)."""
    return make_tls_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def certs(tls_certs: TlsCerts) -> TlsCerts:
    """Alias of `tls_certs`."""
    return tls_certs
