"""SMTP AUTH (RFC 4954): PLAIN, LOGIN, CRAM-MD5, XOAUTH2 and OAUTHBEARER (RFC 7628).

The exchange runs on smtplib's AUTH loop; everything the client sends while it runs is marked
secret in the transcript, so it shows as ``[redacted]`` unless --show-secrets.
"""

from __future__ import annotations

import os
import shlex
import smtplib
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smtpcli.errors import IncompleteError, ProtocolError, SmtpReplyError, UsageError
from smtpcli.smtp.reply import Reply

if TYPE_CHECKING:
    from smtpcli.smtp.connection import SmtpConnection

PASSWORD_MECHANISMS = ("CRAM-MD5", "PLAIN", "LOGIN")  # preference order for --auth auto
TOKEN_MECHANISMS = ("OAUTHBEARER", "XOAUTH2")
MECHANISMS = PASSWORD_MECHANISMS + TOKEN_MECHANISMS


class NotAdvertisedError(IncompleteError):
    """The server does not offer what was asked for (an extension or AUTH mechanism)."""

    kind = "capability"


@dataclass(frozen=True)
class Credentials:
    """A user name with a password or an OAuth bearer token; both hidden from repr()."""

    user: str
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def secrets(self) -> list[str]:
        """Every secret string, for tests and scrubbing."""
        return [s for s in (self.password, self.token) if s]


def advertised_mechanisms(conn: SmtpConnection) -> list[str]:
    """Mechanisms from the EHLO AUTH line (RFC 4954 3), upper-case, in the server's order."""
    return [m.upper() for m in conn.esmtp_features.get("auth", "").split()]


def choose_mechanism(advertised: list[str], requested: str | None, creds: Credentials) -> str:
    """``requested`` (or ``auto``/None: the strongest advertised one the credentials fit)."""
    adv = [m.upper() for m in advertised]
    if not adv:
        raise NotAdvertisedError(
            "the server does not advertise AUTH (after TLS? some servers offer AUTH only "
            "after STARTTLS)"
        )
    if requested and requested.lower() != "auto":
        mech = requested.upper()
        if mech not in MECHANISMS:
            raise UsageError(f"unknown AUTH mechanism {requested!r} (use auto or {', '.join(MECHANISMS)})")
        if mech not in adv:
            raise NotAdvertisedError(
                f"the server does not advertise AUTH {mech} (it offers {' '.join(adv)})"
            )
        _check_fits(mech, creds)
        return mech
    order = TOKEN_MECHANISMS if creds.token else PASSWORD_MECHANISMS
    for mech in order:
        if mech in adv:
            return mech
    kind = "a token" if creds.token else "a password"
    raise NotAdvertisedError(
        f"no AUTH mechanism usable with {kind}: the server offers {' '.join(adv)}"
    )


def _check_fits(mech: str, creds: Credentials) -> None:
    if mech in TOKEN_MECHANISMS and not creds.token:
        raise UsageError(f"AUTH {mech} needs a token (--oauth-token-file or --oauth-token-cmd)")
    if mech in PASSWORD_MECHANISMS and creds.password is None:
        raise UsageError(f"AUTH {mech} needs a password")


def _xoauth2(creds: Credentials) -> str:
    # https://developers.google.com/gmail/imap/xoauth2-protocol
    return f"user={creds.user}\x01auth=Bearer {creds.token}\x01\x01"


def _oauthbearer(creds: Credentials) -> str:
    # RFC 7628 3.1: gs2-header "n,a=<authzid>," then kvpairs separated by ^A.
    user = creds.user.replace("=", "=3D").replace(",", "=2C")
    return f"n,a={user},\x01auth=Bearer {creds.token}\x01\x01"


def authenticate(conn: SmtpConnection, mechanism: str, creds: Credentials) -> Reply:
    """Run AUTH ``mechanism``; returns the final 235 reply.

    A rejection (535, 534, 454...) raises ``SmtpReplyError`` (exit 4/5) with the server's reply.
    """
    mech = mechanism.upper()
    _check_fits(mech, creds)
    conn.user, conn.password = creds.user, creds.password or ""

    def token_object(challenge: bytes | None = None) -> str:
        if challenge is None:
            return _xoauth2(creds) if mech == "XOAUTH2" else _oauthbearer(creds)
        # A 334 after the initial response is an error report (JSON); answer with the empty
        # response (XOAUTH2) or %x01 (RFC 7628 3.2.3) so the server sends the final reply.
        return "" if mech == "XOAUTH2" else "\x01"

    objects: dict[str, Any] = {
        "PLAIN": conn.auth_plain, "LOGIN": conn.auth_login, "CRAM-MD5": conn.auth_cram_md5,
        "XOAUTH2": token_object, "OAUTHBEARER": token_object,
    }
    # LOGIN without an initial response is what most servers expect (the draft never had one).
    initial_ok = mech != "LOGIN"
    with conn.transcript.in_stage("auth"), conn.transcript.secret():
        try:
            conn.auth(mech, objects[mech], initial_response_ok=initial_ok)
        except smtplib.SMTPAuthenticationError as exc:
            reply = conn.last_reply or Reply(exc.smtp_code)
            raise SmtpReplyError(
                f"authentication as {creds.user!r} with {mech} failed at {conn.where}: "
                f"{reply.one_line()}",
                code=reply.code, reply=reply.text,
            ) from None
        except smtplib.SMTPException as exc:
            raise ProtocolError(f"AUTH {mech} with {conn.where} failed: {exc}") from None
        finally:
            conn.password = ""
    return conn.last_reply or Reply(235)


def read_secret_file(path: str, what: str) -> str:
    """First line of a file (passwords and tokens end at the newline)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} file {path}: {exc}") from None
    if not text:
        raise UsageError(f"{what} file {path} is empty")
    return text


def token_from_command(command: str, timeout: float = 30.0) -> str:
    """Run ``command`` (no shell) and use its first output line as the bearer token."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"cannot parse --oauth-token-cmd: {exc}") from None
    if not argv:
        raise UsageError("--oauth-token-cmd is empty")
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False,
            env=os.environ.copy(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"--oauth-token-cmd failed: {exc}") from None
    if done.returncode != 0:
        raise UsageError(f"--oauth-token-cmd exited with {done.returncode}")
    token = done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""
    if not token:
        raise UsageError("--oauth-token-cmd printed no token")
    return token
