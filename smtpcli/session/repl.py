"""The interactive loop (prompt_toolkit): coloured replies, completion, filtered history.

Ctrl-C clears the line; Ctrl-D sends QUIT and leaves. prompt_toolkit is imported only here, and
only when the REPL runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smtpcli.session.engine import Output, Session
from smtpcli.session.scripted import PREFIX

STYLE_BY_CLASS = {2: "ansigreen", 3: "ansicyan", 4: "ansiyellow", 5: "ansired"}
STYLE_BY_KIND = {"sent": "ansiblue", "tls": "ansimagenta", "info": "ansibrightblack",
                 "note": "ansibrightblack", "explain": "ansiyellow italic", "cert": "ansimagenta",
                 "error": "ansired bold"}


def style_for(item: Output) -> str:
    """Replies coloured by class (2xx green ... 5xx red); other kinds by kind."""
    if item.kind == "recv" and item.code is not None:
        return STYLE_BY_CLASS.get(item.code // 100, "")
    return STYLE_BY_KIND.get(item.kind, "")


def prompt_text(session: Session) -> str:
    state = session.state
    if state.in_data:
        return "data> "
    if state.in_auth:
        return "auth> "
    if not state.connected:
        return "smtp (not connected)> "
    return f"smtp {state.host}{' tls' if state.tls else ''}> "


def run_repl(
    session: Session, *, history: Path | None, input: Any = None, output: Any = None,
    tee: Any = None,
) -> int:
    """Run until .quit, QUIT or Ctrl-D; returns the exit code of the last reply.

    ``input``/``output`` are prompt_toolkit's (tests pass a pipe input and DummyOutput);
    ``tee`` also receives every Output item."""
    from prompt_toolkit import PromptSession, print_formatted_text
    from prompt_toolkit.formatted_text import FormattedText

    from smtpcli.session.completer import make_completer
    from smtpcli.session.history import make_history
    from smtpcli.session.scripted import session_exit_code

    def emit(item: Output) -> None:
        if tee is not None:
            tee(item)
        text = "\n".join(PREFIX.get(item.kind, "") + line for line in item.text.split("\n"))
        print_formatted_text(FormattedText([(style_for(item), text)]), output=output)

    session.emit = emit
    hist = make_history(history, lambda: session.state.in_auth) if history else None
    kwargs: dict[str, Any] = {"input": input, "output": output}
    prompt: PromptSession[str] = PromptSession(
        history=hist, completer=make_completer(session.state), complete_while_typing=False,
        **kwargs,
    )

    def ask(text: str) -> str | None:
        try:
            return str(PromptSession(**kwargs).prompt(text))
        except (EOFError, KeyboardInterrupt):
            return None

    given = session.read_secret  # --password-file / SMTPCLI_PASSWORD, asked before prompting

    def ask_secret(text: str) -> str | None:
        known = given(text)
        if known is not None:
            return known
        try:
            return str(PromptSession(**kwargs).prompt(text, is_password=True))
        except (EOFError, KeyboardInterrupt):
            return None

    session.read_line = ask
    session.read_secret = ask_secret
    session.info("type .help for special commands; Ctrl-D quits")
    while not session.done:
        try:
            line = prompt.prompt(prompt_text(session))
        except KeyboardInterrupt:
            continue  # Ctrl-C: the line is cleared, the session goes on
        except EOFError:
            last_reply, last_error = session.last_reply, session.last_error
            session.quit()
            session.last_reply, session.last_error = last_reply, last_error
            break
        session.handle(line)
    return session_exit_code(session)
