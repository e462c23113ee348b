"""SMTP AUTH (RFC 4954): PLAIN, LOGIN, CRAM-MD5, XOAUTH2 and OAUTHBEARER (RFC 7628).

The exchange runs on smtplib's AUTH loop; everything the client sends while it runs is marked
secret in the transcript, so it shows as ``[redacted]`` unless --show-secrets.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from smtpcli.errors import IncompleteError, ProtocolError, SmtpReplyError, UsageError
from smtpcli.records import FrozenRecord
from smtpcli.smtp.reply import Reply

if TYPE_CHECKING:
    from smtpcli.smtp.connection import SmtpConnection

PASSWORD_MECHANISMS = ("CRAM-MD5", "PLAIN", "LOGIN")  # preference order for --auth auto
TOKEN_MECHANISMS = ("OAUTHBEARER", "XOAUTH2")
MECHANISMS = PASSWORD_MECHANISMS + TOKEN_MECHANISMS
MAX_CHALLENGES = 5  # more round trips than any of these mechanisms needs


class NotAdvertisedError(IncompleteError):
    """The server does not offer what was asked for (an extension or AUTH mechanism)."""

    kind = "capability"


class Credentials(FrozenRecord):
    """A user name with a password or an OAuth bearer token; both hidden from repr()."""

    __slots__ = ("user", "password", "token")
    _hidden = ("password", "token")
    user: str
    password: str | None
    token: str | None

    def __init__(self, user: str, password: str | None = None, token: str | None = None) -> None:
        self._set(user=user, password=password, token=token)

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


def _initial(mech: str, creds: Credentials) -> str | None:
    """The initial response (RFC 4954 4), or None when the mechanism starts with a challenge."""
    if mech == "PLAIN":
        return f"\0{creds.user}\0{creds.password}"  # RFC 4616 2 (UTF-8)
    if mech == "XOAUTH2":
        return _xoauth2(creds)
    if mech == "OAUTHBEARER":
        return _oauthbearer(creds)
    return None  # LOGIN and CRAM-MD5 wait for the server's challenge


def _respond(mech: str, creds: Credentials, challenge: bytes, step: int) -> str:
    if mech == "LOGIN":
        # The draft LOGIN mechanism: "Username:" then "Password:" (in that order).
        return creds.user if step == 0 else (creds.password or "")
    if mech == "CRAM-MD5":
        # RFC 2195 2: user SP hex(HMAC-MD5(password, challenge)).
        import hmac

        digest = hmac.new((creds.password or "").encode(), challenge, "md5").hexdigest()
        return f"{creds.user} {digest}"
    if mech == "XOAUTH2":
        # A 334 after the initial response is an error report (JSON): answer with an empty
        # line so the server sends the final 535.
        return ""
    if mech == "OAUTHBEARER":
        return "\x01"  # RFC 7628 3.2.3: the client's dummy response to an error challenge
    return ""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def authenticate(conn: SmtpConnection, mechanism: str, creds: Credentials) -> Reply:
    """Run AUTH ``mechanism`` (RFC 4954); returns the final 235 reply.

    A rejection (535, 534, 454...) raises ``SmtpReplyError`` (exit 4/5) with the server's reply;
    a server that keeps challenging, or ends with a 2xx/3xx other than 235, is a
    ``ProtocolError`` (exit 3). Credentials are UTF-8 (RFC 4616).
    """
    mech = mechanism.upper()
    _check_fits(mech, creds)
    with conn.transcript.in_stage("auth"), conn.transcript.secret():
        initial = _initial(mech, creds)
        if initial is None:
            reply = conn.command(f"AUTH {mech}")
        else:
            # RFC 4954 4: an empty initial response is sent as "=".
            reply = conn.command(f"AUTH {mech} {_b64(initial) or '='}")
        step = 0
        while reply.code == 334:
            if step >= MAX_CHALLENGES:
                raise ProtocolError(f"{conn.where} sent more than {MAX_CHALLENGES} AUTH "
                                    f"{mech} challenges")
            try:
                challenge = base64.b64decode(reply.text.strip() or b"", validate=False)
            except ValueError:
                raise ProtocolError(f"{conn.where} sent an AUTH challenge that is not base64: "
                                    f"{reply.text[:60]!r}") from None
            reply = conn.command(_b64(_respond(mech, creds, challenge, step)))
            step += 1
        if reply.code < 400 and reply.code != 235:
            # RFC 4954 6: success is 235, failure a 4xx/5xx. Anything else (smtp-sink says
            # "250 2.0.0 Ok") is neither: the authentication state is unknown, not "failed".
            raise ProtocolError(
                f"{conn.where} answered AUTH {mech} with {reply.one_line()} instead of 235 or "
                "an error (RFC 4954 6): a protocol violation, authentication state unknown"
            )
        if reply.code != 235:
            raise SmtpReplyError(
                f"authentication as {creds.user!r} with {mech} failed at {conn.where}: "
                f"{reply.one_line()}",
                code=reply.code if reply.code >= 400 else 535, reply=reply.text,
            )
    return reply


def read_secret_file(path: str, what: str) -> str:
    """First line of a file (passwords and tokens end at the newline)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.readline().rstrip("\r\n")
    except OSError as exc:
        raise UsageError(f"cannot read {what} file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {what} file {path}: not UTF-8 text") from None
    if not text:
        raise UsageError(f"{what} file {path} is empty")
    return text


def token_from_command(command: str, timeout: float = 30.0) -> str:
    """Run ``command`` (no shell) and use its first output line as the bearer token."""
    import os
    import shlex
    import subprocess

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
