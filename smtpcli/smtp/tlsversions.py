"""Which TLS versions a server accepts: one handshake per version, each pinned to that version.

TLS 1.0 and 1.1 are deprecated (RFC 8996). OpenSSL 3 refuses them on the client side at its
default security level, so those handshakes lower it (``@SECLEVEL=0``); when the local OpenSSL
cannot offer a version at all, the answer is ``untested`` with the reason, never "refused".
"""

from __future__ import annotations

import socket
import ssl
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from smtpcli.errors import SmtpcliError
from smtpcli.smtp.connection import ConnectOptions, SmtpConnection
from smtpcli.smtp.target import Target, TlsMode

VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}
_HAS = {"1.0": ssl.HAS_TLSv1, "1.1": ssl.HAS_TLSv1_1, "1.2": ssl.HAS_TLSv1_2,
        "1.3": ssl.HAS_TLSv1_3}
# OpenSSL reasons that mean "this client cannot offer the version", not "the server refused".
_LOCAL_REASONS = ("NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE", "UNSUPPORTED_PROTOCOL")


@dataclass(frozen=True)
class VersionResult:
    """``state``: ``accepted``, ``refused``, ``untested`` (local limits) or ``error``."""

    version: str
    state: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"version": self.version, "state": self.state}
        if self.detail:
            out["detail"] = self.detail
        return out


def pinned_context(version: str) -> ssl.SSLContext:
    """A non-verifying client context that offers exactly ``version`` (verification is not the
    point here: the main probe handshake reports the certificate)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if VERSIONS[version] < ssl.TLSVersion.TLSv1_2:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        # Offering TLS 1.0/1.1 is the point of the test; Python's deprecation notice is not news.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = VERSIONS[version]
        ctx.maximum_version = VERSIONS[version]
    return ctx


def _plain_socket(target: Target, timeout: float) -> socket.socket:
    host = target.addresses[0] if target.addresses else target.host
    sock = socket.create_connection((host, target.port), timeout=timeout)
    return sock


def verifying_context(cafile: str | None) -> ssl.SSLContext:
    """OpenSSL's chain verification against the system store plus ``cafile``; the name is
    checked separately (RFC 6125, against the MX name), so ``check_hostname`` is off."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.load_default_certs()
    ctx.check_hostname = False
    return ctx


def verify_handshake(target: Target, options: ConnectOptions, sni: str | None,
                     cafile: str | None) -> VersionResult:
    """One more connection whose handshake lets OpenSSL verify the chain: ``accepted`` means
    the chain is trusted, ``refused`` carries OpenSSL's verification error."""
    return try_version(target, "verify", options, sni, ctx=verifying_context(cafile))


def try_version(target: Target, version: str, options: ConnectOptions, sni: str | None,
                ctx: ssl.SSLContext | None = None) -> VersionResult:
    """One connection: (EHLO, STARTTLS unless implicit) and a handshake pinned to ``version``
    (or with ``ctx`` as given)."""
    if ctx is None:
        if not _HAS.get(version, False):
            return VersionResult(version, "untested", "the local OpenSSL was built without it")
        try:
            ctx = pinned_context(version)
        except (ValueError, ssl.SSLError) as exc:
            return VersionResult(version, "untested", f"the local OpenSSL cannot offer it: {exc}")
    conn: SmtpConnection | None = None
    sock: socket.socket | None = None
    try:
        if target.tls is TlsMode.IMPLICIT:
            sock = _plain_socket(target, options.timeout)
        else:
            conn = SmtpConnection(Target(target.host, target.port, TlsMode.NONE,
                                         target.addresses), options)
            banner = conn.open()
            if banner is None or banner.code != 220:
                shown = banner.one_line() if banner is not None else "none"
                return VersionResult(version, "error", f"greeting {shown}")
            conn.hello()
            reply = conn.command("STARTTLS")
            if reply.code != 220:
                return VersionResult(version, "error", f"STARTTLS refused: {reply.one_line()}")
            sock = conn.sock
            conn.sock = None  # the TLS socket below takes it over
        assert sock is not None
        sock.settimeout(options.timeout)
        tls = ctx.wrap_socket(sock, server_hostname=sni)
        got = tls.version() or "?"
        tls.close()
        return VersionResult(version, "accepted", got)
    except ssl.SSLCertVerificationError as exc:
        return VersionResult(version, "refused", str(exc.verify_message or exc.reason or exc))
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if any(r in str(reason).upper() for r in _LOCAL_REASONS) and "ALERT" not in str(reason):
            return VersionResult(version, "untested", f"the local OpenSSL refused: {reason}")
        return VersionResult(version, "refused", str(reason))
    except TimeoutError:
        return VersionResult(version, "error", f"timed out after {options.timeout:g}s")
    except SmtpcliError as exc:
        return VersionResult(version, "error", exc.one_line())
    except OSError as exc:
        # A server that drops the connection at a ClientHello it dislikes refuses the version.
        return VersionResult(version, "refused", f"connection closed: {exc.strerror or exc}")
    finally:
        if conn is not None:
            conn.close()
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


def accepted_versions(
    target: Target, options: ConnectOptions, sni: str | None,
    versions: tuple[str, ...] = tuple(VERSIONS),
) -> list[VersionResult]:
    """Try every version concurrently (one connection each)."""
    if not versions:
        return []
    with ThreadPoolExecutor(max_workers=len(versions)) as pool:
        return list(pool.map(lambda v: try_version(target, v, options, sni), versions))
