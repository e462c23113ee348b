"""Which TLS versions a server accepts: one handshake per version, each pinned to that version.

TLS 1.0 and 1.1 are deprecated (RFC 8996). OpenSSL 3 refuses them on the client side at its
default security level, so those handshakes lower it (``@SECLEVEL=0``); when the local OpenSSL
cannot offer a version at all, the answer is ``untested`` with the reason, never "refused".
"""

from __future__ import annotations

import socket
import ssl
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from smtpcli.errors import SmtpcliError
from smtpcli.smtp.connection import ConnectOptions, SmtpConnection
from smtpcli.smtp.target import Target, TlsMode
from smtpcli.smtp.tlsinfo import unverified_context

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

T = TypeVar("T")


class Once(Generic[T]):
    """A value built at most once, by whichever thread asks first; the others wait for it.

    Loading the system trust store costs tens of milliseconds of CPU per context: one shared,
    prepared while the greetings are awaited, keeps that off every connection's path. A build
    that raises is not kept, so the next caller meets the same error.
    """

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._done = False
        self._value: T | None = None

    def get(self) -> T:
        with self._lock:
            if not self._done:
                self._value = self._build()
                self._done = True
            return self._value  # type: ignore[return-value]


class _ContextFailed(Exception):
    """Building the TLS context failed: not a verdict on the server, so it is re-raised as is."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


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
    ctx = unverified_context()
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
    if cafile:
        # Without a cafile create_default_context has loaded the system store already.
        ctx.load_default_certs()
    ctx.check_hostname = False
    return ctx


def verify_handshake(target: Target, options: ConnectOptions, sni: str | None,
                     cafile: str | None,
                     context: Once[ssl.SSLContext] | None = None) -> VersionResult:
    """One more connection whose handshake lets OpenSSL verify the chain: ``accepted`` means
    the chain is trusted, ``refused`` carries OpenSSL's verification error.

    ``context``: the run's shared ``verifying_context(cafile)``; it is asked for only once
    STARTTLS is accepted, so building it never delays the connection.
    """
    ctx = context.get if context is not None else (lambda: verifying_context(cafile))
    try:
        return try_version(target, "verify", options, sni, ctx=ctx)
    except _ContextFailed as failed:
        raise failed.error from None


def try_version(target: Target, version: str, options: ConnectOptions, sni: str | None,
                ctx: ssl.SSLContext | Callable[[], ssl.SSLContext] | None = None
                ) -> VersionResult:
    """One connection: (EHLO, STARTTLS unless implicit) and a handshake pinned to ``version``
    (or with ``ctx`` as given, or as built by ``ctx()`` once the handshake is due)."""
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
        if callable(ctx):
            try:
                ctx = ctx()
            except Exception as exc:  # noqa: BLE001 - re-raised by the caller, not a verdict
                raise _ContextFailed(exc) from exc
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
