"""Completion: a pure ``suggest()`` plus a thin prompt_toolkit adapter (imported lazily)."""

from __future__ import annotations

from typing import Any

from smtpcli.session.state import SessionState

# RFC 5321 4.1 verbs always worth offering; the rest depend on what the server advertised.
BASE_VERBS = ("EHLO", "HELO", "MAIL FROM:", "RCPT TO:", "DATA", "RSET", "NOOP", "QUIT", "VRFY",
              "HELP")
EXTENSION_VERBS = {"EXPN": "EXPN", "BDAT": "CHUNKING", "ETRN": "ETRN"}


def _specials() -> list[str]:
    from smtpcli.session.specials import SPECIALS

    return sorted(SPECIALS)


def _verbs(state: SessionState) -> list[str]:
    verbs = list(BASE_VERBS)
    caps = state.capabilities
    # STARTTLS only when advertised and not yet in TLS (RFC 3207 4.2: not again after TLS).
    if "STARTTLS" in caps and not state.tls:
        verbs.append("STARTTLS")
    if state.auth_mechanisms:
        verbs.append("AUTH")
    for verb, keyword in EXTENSION_VERBS.items():
        if keyword in caps:
            verbs.append(verb)
    return verbs


def suggest(text: str, state: SessionState) -> list[str]:
    """Completions for the line typed so far (each a full replacement of the current word).

    Verbs and specials complete the first word; ``AUTH``/``.auth`` complete only the mechanisms
    the server offered; ``MAIL FROM:`` parameters complete from SIZE/BODY/SMTPUTF8/REQUIRETLS.
    """
    if state.in_data or state.in_auth:
        return []
    words = text.split(" ")
    first = words[0].upper()
    if len(words) == 1:
        prefix = text
        if prefix.startswith("."):
            return [s for s in _specials() if s.startswith(prefix.lower())]
        upper = prefix.upper()
        return [v for v in _verbs(state) if v.startswith(upper)]
    current = words[-1]
    if first in ("AUTH", ".AUTH") and len(words) == 2:
        return [m for m in state.auth_mechanisms if m.startswith(current.upper())]
    if first in ("MAIL", ".MAIL") and len(words) >= 3:
        params = []
        caps = state.capabilities
        if "SIZE" in caps:
            params.append("SIZE=")
        if "8BITMIME" in caps:
            params += ["BODY=8BITMIME", "BODY=7BIT"]
        if "SMTPUTF8" in caps:
            params.append("SMTPUTF8")
        if "REQUIRETLS" in caps:
            params.append("REQUIRETLS")
        if "DSN" in caps:
            params += ["RET=FULL", "RET=HDRS", "ENVID="]
        return [p for p in params if p.startswith(current.upper())]
    if first in ("RCPT", ".RCPT") and "DSN" in state.capabilities and len(words) >= 3:
        params = ["NOTIFY=SUCCESS,FAILURE,DELAY", "NOTIFY=NEVER", "ORCPT=rfc822;"]
        return [p for p in params if p.startswith(current.upper())]
    if first == ".HELP" and len(words) == 2:
        return [s for s in _specials() if s.startswith("." + current.lstrip(".").lower())]
    return []


def make_completer(state: SessionState) -> Any:
    """A prompt_toolkit Completer around ``suggest`` (prompt_toolkit imported here only)."""
    from prompt_toolkit.completion import Completer, Completion

    class SessionCompleter(Completer):  # type: ignore[misc]
        def get_completions(self, document: Any, complete_event: Any) -> Any:
            text = document.text_before_cursor
            current = text.split(" ")[-1]
            for option in suggest(text, state):
                yield Completion(option, start_position=-len(current))

    return SessionCompleter()
