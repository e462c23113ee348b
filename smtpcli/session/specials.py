"""Special commands (``.connect``, ``.auth``...): a decorator registry; ``.help`` is built from it.

Each special is a function ``(session, args) -> None`` that drives the session through the
``SessionActions`` interface below; ``engine.Session`` implements it and dispatches to this
registry, so the engine knows the specials and the specials know only the interface (no import
back into the engine). The REPL and the scripted mode share them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from smtpcli.session.text import angle_address


class SessionActions(Protocol):
    """What a special command may ask of the session (implemented by ``engine.Session``)."""

    def info(self, text: str) -> None: ...
    def error(self, text: str) -> None: ...
    def connect(self, text: str | None = None) -> object: ...
    def ehlo(self, name: str | None = None) -> object: ...
    def starttls(self, *, ehlo_after: bool) -> object: ...
    def auth(self, mechanism: str, user: str) -> None: ...
    def raw(self, line: str) -> object: ...
    def data(self, path: str | None) -> object: ...
    def send_test(self, sender: str | None, recipient: str | None) -> None: ...
    def show_cert(self) -> None: ...
    def show_transcript(self, path: str | None) -> None: ...
    def explain_code(self, text: str) -> None: ...
    def quit(self) -> None: ...


Handler = Callable[[SessionActions, list[str]], None]


@dataclass(frozen=True)
class Special:
    name: str
    args: str
    help: str
    func: Handler


SPECIALS: dict[str, Special] = {}


def special(name: str, args: str = "", help: str = "") -> Callable[[Handler], Handler]:
    """Register ``func`` as special command ``name`` (leading dot included)."""

    def deco(func: Handler) -> Handler:
        SPECIALS[name] = Special(name, args, help or (func.__doc__ or "").strip().split("\n")[0],
                                 func)
        return func

    return deco


def help_text(name: str | None = None) -> str:
    """The ``.help`` text: every special with its arguments and one line of help."""
    if name:
        key = name if name.startswith(".") else "." + name
        entry = SPECIALS.get(key.lower())
        if entry is None:
            return f"no special command {key} (try .help)"
        return f"{entry.name} {entry.args}".rstrip() + f"\n    {entry.help}"
    rows = [(f"{s.name} {s.args}".rstrip(), s.help) for s in sorted(SPECIALS.values(),
                                                                    key=lambda s: s.name)]
    width = max(len(r[0]) for r in rows)
    lines = ["Special commands (anything else is sent to the server as typed):"]
    lines += [f"  {left:<{width}}  {right}" for left, right in rows]
    return "\n".join(lines)


@special(".help", "[COMMAND]", "List special commands, or show one.")
def _help(session: SessionActions, args: list[str]) -> None:
    session.info(help_text(args[0] if args else None))


@special(".connect", "[TARGET]", "Connect (or reconnect) and read the greeting.")
def _connect(session: SessionActions, args: list[str]) -> None:
    session.connect(args[0] if args else None)


@special(".ehlo", "[NAME]", "Send EHLO and remember the capabilities.")
def _ehlo(session: SessionActions, args: list[str]) -> None:
    session.ehlo(args[0] if args else None)


@special(".starttls", "", "STARTTLS, the handshake, the certificate summary, then EHLO again.")
def _starttls(session: SessionActions, args: list[str]) -> None:
    session.starttls(ehlo_after=True)


@special(".auth", "MECH USER", "AUTH: prompts for the password (or token) and encodes it for you.")
def _auth(session: SessionActions, args: list[str]) -> None:
    if len(args) != 2:
        session.error("usage: .auth MECH USER (for example .auth PLAIN alice)")
        return
    session.auth(args[0], args[1])


@special(".mail", "FROM [PARAMS]", "MAIL FROM:<FROM> with optional ESMTP parameters.")
def _mail(session: SessionActions, args: list[str]) -> None:
    if not args:
        session.error("usage: .mail ADDRESS [PARAMS] (use <> for the null sender)")
        return
    session.raw(" ".join([f"MAIL FROM:{angle_address(args[0])}", *args[1:]]))


@special(".rcpt", "TO [PARAMS]", "RCPT TO:<TO> with optional ESMTP parameters.")
def _rcpt(session: SessionActions, args: list[str]) -> None:
    if not args:
        session.error("usage: .rcpt ADDRESS [PARAMS]")
        return
    session.raw(" ".join([f"RCPT TO:{angle_address(args[0])}", *args[1:]]))


@special(".data", "[FILE]", "DATA: compose until a line '.', or send FILE; dot-stuffing done.")
def _data(session: SessionActions, args: list[str]) -> None:
    session.data(args[0] if args else None)


@special(".send", "[FROM [TO]]", "A guided test message: MAIL, RCPT, DATA with a test body.")
def _send(session: SessionActions, args: list[str]) -> None:
    session.send_test(*(args + [None, None])[:2])


@special(".cert", "", "Show the server's certificate chain (after STARTTLS or implicit TLS).")
def _cert(session: SessionActions, args: list[str]) -> None:
    session.show_cert()


@special(".transcript", "[FILE]", "Show the transcript so far, or write it to FILE.")
def _transcript(session: SessionActions, args: list[str]) -> None:
    session.show_transcript(args[0] if args else None)


@special(".explain", "CODE", "Explain a reply code or enhanced status code (5.7.1).")
def _explain(session: SessionActions, args: list[str]) -> None:
    if not args:
        session.error("usage: .explain CODE [ENHANCED] (for example .explain 550 5.7.1)")
        return
    session.explain_code(" ".join(args))


@special(".reset", "", "RSET: abort the current transaction.")
def _reset(session: SessionActions, args: list[str]) -> None:
    session.raw("RSET")


@special(".quit", "", "QUIT and leave.")
def _quit(session: SessionActions, args: list[str]) -> None:
    session.quit()
