"""Run the demo: a capture server on loopback, then each step as the real CLI command.

Each step runs the click command in-process (``cli.main(argv, standalone_mode=False)``), so the
output is what a user typing the shown command line gets; stdout and stderr are teed (shown and
kept) so the demo can judge every step against its expected outcome and check that the demo
password never appears anywhere.
"""

from __future__ import annotations

import contextlib
import io
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from smtpcli.results import Report, Status

STEP_NAMES = ("send", "probe", "session", "mailbox", "explain", "check-domain")
DEMO_USER = "demo"
EHLO_NAME = "demo-client.demo.example"
SENDER = "alice@demo.example"
RECIPIENT = "bob@demo.example"
#: A real Gmail rejection (DMARC), with the domain replaced.
GMAIL_DMARC = ("550 5.7.26 Unauthenticated email from demo.example is not accepted due to "
               "domain's DMARC policy. Please contact the administrator of demo.example domain "
               "if this was a legitimate mail.")


# ---- showing command lines --------------------------------------------------------------------

_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def shell_quote(arg: str) -> str:
    """Quote one argument the way a person would type it in sh (readable, and correct)."""
    if _SAFE.fullmatch(arg):
        return arg
    if "'" not in arg:
        return f"'{arg}'"
    if not any(c in arg for c in '"$`\\!'):
        return f'"{arg}"'
    import shlex

    return shlex.quote(arg)


def command_line(argv: list[str], stdin_file: str | None = None) -> str:
    line = " ".join(["smtpcli", *(shell_quote(a) for a in argv)])
    return f"{line} < {shell_quote(stdin_file)}" if stdin_file else line


# ---- running one command in-process ------------------------------------------------------------


class Tee(io.StringIO):
    """Keeps everything written, and passes it on to ``target`` when there is one."""

    def __init__(self, target: TextIO | None) -> None:
        super().__init__()
        self.target = target

    def write(self, text: str) -> int:
        if self.target is not None:
            self.target.write(text)
        return super().write(text)

    def flush(self) -> None:
        if self.target is not None:
            self.target.flush()

    def isatty(self) -> bool:  # colour follows the real terminal (render.style)
        return self.target is not None and self.target.isatty()


@dataclass
class Invocation:
    exit_code: int
    stdout: str
    stderr: str
    elapsed_ms: float


def invoke(argv: list[str], *, stdin: str | None = None, echo: bool = True) -> Invocation:
    """Run ``smtpcli ARGV`` in this process; errors become one stderr line and an exit code,
    as in ``smtpcli.cli.main.main`` (which ends in sys.exit, so it cannot be called here)."""
    import click

    from smtpcli.cli.main import cli
    from smtpcli.cli.state import STATE
    from smtpcli.errors import ExitCode, SmtpcliError

    out = Tee(sys.stdout if echo else None)
    err = Tee(sys.stderr if echo else None)
    saved = (STATE.json, STATE.command, sys.stdin)
    STATE.json, STATE.command = "--json" in argv, argv[0]
    started = time.monotonic()
    try:
        sys.stdin = io.StringIO(stdin or "")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rv = cli.main(argv, prog_name="smtpcli", standalone_mode=False)
                code = int(rv) if isinstance(rv, int) else 0
            except click.exceptions.Exit as exc:
                code = exc.exit_code
            except click.ClickException as exc:
                exc.show(file=err)
                code = exc.exit_code
            except SmtpcliError as exc:
                _error(exc.one_line(), exc.kind, int(exc.exit_code), argv)
                code = int(exc.exit_code)
            except click.exceptions.Abort:
                raise KeyboardInterrupt from None
            except Exception as exc:  # a bug in a command: the step fails, the demo goes on
                _error(f"internal error: {type(exc).__name__}: {exc}", "internal",
                       int(ExitCode.INCOMPLETE), argv)
                code = int(ExitCode.INCOMPLETE)
    finally:
        STATE.json, STATE.command, sys.stdin = saved
    return Invocation(code, out.getvalue(), err.getvalue(),
                      round((time.monotonic() - started) * 1000, 1))


def _error(message: str, kind: str, code: int, argv: list[str]) -> None:
    print(f"smtpcli: {message}", file=sys.stderr)
    if "--json" in argv:
        from smtpcli.render.json_out import dumps, error_document

        print(dumps(error_document(argv[0], kind, message, code)))


# ---- the steps ---------------------------------------------------------------------------------


@dataclass
class Step:
    """One command of the demo and what it is expected to do."""

    name: str
    title: str
    argv: list[str]
    expect_codes: tuple[int, ...] = (0,)
    expect_text: tuple[str, ...] = ()  # finding ids or words that must be in the output
    new_messages: int = 0  # messages the server must have received from this step
    stdin_file: str | None = None
    note: str = ""


@dataclass
class StepResult:
    step: Step
    command: str
    run: Invocation
    problems: list[str] = field(default_factory=list)
    report: Any = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.step.name, "command": self.command, "exit_code": self.run.exit_code,
            "expected_exit_codes": list(self.step.expect_codes), "ok": self.ok,
            "problems": self.problems, "elapsed_ms": self.run.elapsed_ms,
            "stderr": self.run.stderr.splitlines(), "report": self.report,
        }


SESSION_SCRIPT = """\
EHLO {ehlo}
STARTTLS
EHLO {ehlo}
.auth PLAIN {user}
MAIL FROM:<{sender}>
RCPT TO:<{rcpt}>
DATA
From: {sender}
To: {rcpt}
Subject: smtpcli demo: typed in a session

Each line of this message went to the server as typed.
.
QUIT
"""


def build_steps(address: str, dns_address: str, workdir: Path,
                inbox: str = "http://127.0.0.1:8025/") -> list[Step]:
    """Every step, with its command line against the demo server at ``address``."""
    from smtpcli.demo import zone_file_path

    password_file = str(workdir / "password")
    script = workdir / "session.txt"
    script.write_text(SESSION_SCRIPT.format(ehlo=EHLO_NAME, user=DEMO_USER, sender=SENDER,
                                            rcpt=RECIPIENT), encoding="utf-8")
    return [
        Step("send", "send a test message with STARTTLS and AUTH", [
            "send", "--server", address, "--tls", "starttls", "--insecure",
            "--user", DEMO_USER, "--password-file", password_file, "--ehlo", EHLO_NAME,
            "--from", SENDER, "--to", RECIPIENT, "--subject", "smtpcli demo",
            "--body", "Hello from smtpcli demo.",
        ], new_messages=1,
            note="--insecure because the demo certificate is self-signed; with a real "
                 "server, leave it out (or trust its CA with --cafile)."),
        Step("probe", "probe the server: greeting, EHLO, STARTTLS, certificate, TLS versions", [
            "probe", address, "--ehlo", EHLO_NAME, "--nameserver", dns_address,
            "--timeout", "5",
        ], expect_codes=(0, 1), expect_text=("tls.",),
            note="the self-signed certificate is reported, as it would be on a real server; "
                 "--nameserver points at the demo's own DNS server for the reverse lookup."),
        Step("session", "a scripted SMTP session: EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, QUIT", [
            "session", address, "--password-file", password_file, "--no-history",
        ], stdin_file=str(script), new_messages=1,
            note="without a terminal on stdin, session reads its lines from it; "
                 "the AUTH exchange is shown as [redacted]."),
        Step("mailbox", "ask the server what it captured, through its HTTP API", [
            "mailbox", "list", "--http", inbox.rstrip("/"),
        ], expect_text=("typed in a session", "2 messages"),
            note=f"one GET /api/v1/messages (Mailpit's API shape, so Mailpit clients work); "
                 f"the web inbox is at {inbox}"),
        Step("explain", "explain a real rejection line (Gmail, DMARC)",
             ["explain", GMAIL_DMARC], expect_text=("5.7.26",)),
        Step("check-domain", "check the bundled demo zone (offline, from a zone file)", [
            "check-domain", "--zone-file", str(zone_file_path()), "--offline",
            "--dkim-selector", "demo", "--no-common-selectors",
        ], expect_codes=(0, 1),
            expect_text=("spf.all-neutral", "dmarc.policy-none", "dkim.key-weak"),
            note="the demo zone has deliberate problems (SPF ?all, DMARC p=none, a 1024-bit "
                 "DKIM key): these warnings are the expected outcome."),
    ]


# ---- the whole demo -----------------------------------------------------------------------------


@dataclass
class DemoOptions:
    steps: tuple[str, ...] = ()
    json_mode: bool = False
    keep_serving: bool = False
    password_file: str | None = None  # the demo user's password; default: a random one


@contextlib.contextmanager
def demo_environment(password_file: str | None = None) -> Iterator[tuple[Any, Any, Path, str]]:
    """Server (self-signed STARTTLS, AUTH with a random password, memory storage), the DNS
    helper, and a private directory holding the password file and the session script."""
    from smtpcli.demo.dns import DemoDns
    from smtpcli.server.config import ServeConfig
    from smtpcli.server.runner import run_in_thread

    if password_file:
        from smtpcli.smtp.auth import read_secret_file

        password = read_secret_file(password_file, "password")
    else:
        password = secrets.token_urlsafe(18)
    with tempfile.TemporaryDirectory(prefix="smtpcli-demo-") as tmp:
        workdir = Path(tmp)  # mkdtemp: mode 0700, so the password file is private
        (workdir / "password").write_text(password + "\n", encoding="utf-8")
        (workdir / "password").chmod(0o600)
        config = ServeConfig(host="127.0.0.1", port=0, tls_self_signed=True,
                             auth_users={DEMO_USER: password}, memory=True, grace=1.0,
                             http_port=0)
        server = run_in_thread(config)
        dns = DemoDns(config.hostname).start()
        try:
            yield server, dns, workdir, password
        finally:
            server.stop()
            dns.stop()


def judge(result: StepResult, messages: list[Any], before: int, password: str) -> None:
    """Compare a step's outcome with what it should do; problems go in ``result.problems``."""
    step, run = result.step, result.run
    if run.exit_code not in step.expect_codes:
        want = " or ".join(str(c) for c in step.expect_codes)
        result.problems.append(f"exit {run.exit_code}, expected {want}")
    text = run.stdout + run.stderr
    for needle in step.expect_text:
        if needle not in text:
            result.problems.append(f"expected {needle!r} in the output")
    if password in text:
        result.problems.append("the demo password appeared in the output")
    arrived = len(messages) - before
    if arrived != step.new_messages:
        result.problems.append(f"the server received {arrived} message(s), "
                               f"expected {step.new_messages}")
    for msg in messages[before:]:
        if not msg.tls:
            result.problems.append("a message arrived without TLS")
        if not msg.auth or msg.auth.get("user") != DEMO_USER:
            result.problems.append(f"a message arrived without AUTH as {DEMO_USER}")


def run_demo(opts: DemoOptions, out: TextIO | None = None) -> int:
    """Run the chosen steps (all by default); print as they go; return the exit code."""
    from smtpcli.render.style import Painter

    out = out or sys.stdout
    paint = Painter.for_stream(out)
    started = time.monotonic()
    wanted = [n for n in STEP_NAMES if not opts.steps or n in opts.steps]
    results: list[StepResult] = []
    with demo_environment(opts.password_file) as (server, dns, workdir, password):
        address = f"{server.host}:{server.port}"
        facts = server.server.listening_facts()
        if not opts.json_mode:
            _intro(out, paint, address, facts, workdir)
        inbox = facts["http"]
        steps = [s for s in build_steps(address, dns.address, workdir, inbox)
                 if s.name in wanted]
        for number, step in enumerate(steps, 1):
            result = _run_step(step, number, len(steps), server, password, opts.json_mode,
                               out, paint)
            results.append(result)
        report = _report(results, server, facts, time.monotonic() - started)
        if opts.keep_serving:
            report.facts["serving"] = True
        code = _finish(report, opts.json_mode)
        if opts.keep_serving:
            _keep_serving(out, paint, address, inbox, workdir, server)
    return code


def _intro(out: TextIO, paint: Callable[[str, str], str], address: str, facts: dict[str, Any],
           workdir: Path) -> None:
    cert = facts.get("certificate") or {}
    out.write(paint("smtpcli demo", "bold") + f": a capture server on {address} (smtpcli serve, "
              "in this process)\n")
    out.write(f"  STARTTLS with a throwaway self-signed certificate, SHA-256 "
              f"{cert.get('sha256', '?')[:23]}...\n")
    out.write(f"  AUTH: user {DEMO_USER}, a random password in {workdir / 'password'} "
              "(never printed)\n")
    out.write(f"  web inbox and Mailpit-compatible API: {facts.get('http')}\n")
    out.write("  messages kept in memory; nothing leaves this machine\n")
    out.flush()


def _run_step(step: Step, number: int, total: int, server: Any, password: str, json_mode: bool,
              out: TextIO, paint: Callable[[str, str], str]) -> StepResult:
    argv = [*step.argv, "--json"] if json_mode else list(step.argv)
    shown = command_line(argv, step.stdin_file)
    if not json_mode:
        out.write(f"\n{paint(f'[{number}/{total}] {step.name}', 'bold')}: {step.title}\n")
        if step.note:
            out.write(paint(f"  ({step.note})", "dim") + "\n")
        out.write(paint(f"$ {shown}", "bold") + "\n")
        out.flush()
    stdin = Path(step.stdin_file).read_text(encoding="utf-8") if step.stdin_file else None
    before = len(server.messages)
    run = invoke(argv, stdin=stdin, echo=not json_mode)
    result = StepResult(step, shown, run)
    if json_mode:
        result.report = _parse_json(run.stdout)
    judge(result, list(server.messages), before, password)
    if not json_mode:
        verdict = "as expected" if result.ok else "NOT as expected: " + "; ".join(result.problems)
        out.write(paint(f"  -> exit {run.exit_code}, {verdict}", "ok" if result.ok else "fail")
                  + "\n")
        out.flush()
    return result


def _parse_json(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:
        return {"unparsed_output": text}


def _report(results: list[StepResult], server: Any, facts: dict[str, Any],
            elapsed: float) -> Report:
    report = Report(command="demo", target=facts.get("address"))
    for r in results:
        if r.ok:
            extra = f", server received {r.step.new_messages} message" if r.step.new_messages else ""
            report.add(f"demo.{r.step.name}", Status.OK,
                       f"{r.step.name}: exit {r.run.exit_code} as expected{extra}")
        else:
            report.add(f"demo.{r.step.name}", Status.FAIL,
                       f"{r.step.name}: " + "; ".join(r.problems), detail=r.command)
    ok = sum(r.ok for r in results)
    messages = len(server.messages)
    report.summary = (f"{ok} of {len(results)} steps as expected; the server captured "
                      f"{messages} message{'s' if messages != 1 else ''} in {elapsed:.1f} s")
    report.facts = {
        "server": {k: facts.get(k) for k in ("address", "hostname", "tls", "auth", "storage",
                                             "certificate")} | {"user": DEMO_USER},
        "steps": [r.to_dict() for r in results],
        "messages": [m.envelope_dict() for m in server.messages],
        "elapsed_s": round(elapsed, 2),
    }
    return report


def _finish(report: Report, json_mode: bool) -> int:
    from smtpcli.cli.options import finish

    if not json_mode:
        sys.stdout.write("\n")
    return finish(report, json_mode=json_mode)


def _keep_serving(out: TextIO, paint: Callable[[str, str], str], address: str, inbox: str,
                  workdir: Path, server: Any) -> None:
    """Leave the server up until Ctrl-C, so the user can try commands against it."""
    host, port = address.rsplit(":", 1)
    msg = (f"\nstill serving on {address} (user {DEMO_USER}, password file "
           f"{workdir / 'password'}); try:\n"
           f"  smtpcli send --server {address} --tls starttls --insecure --user {DEMO_USER} "
           f"--password-file {workdir / 'password'} --from {SENDER} --to {RECIPIENT}\n"
           f"  swaks --server {host} --port {port} --to {RECIPIENT}\n"
           f"and watch them arrive in the web inbox: {inbox}\n"
           "press Ctrl-C to stop\n")
    sys.stderr.write(paint(msg, "dim") if out.isatty() else msg)
    sys.stderr.flush()
    try:
        while server.thread.is_alive():
            server.thread.join(0.5)
    except KeyboardInterrupt:
        from smtpcli.interrupt import handled

        handled()  # Ctrl-C is how this ends: let the server and the work folder be cleaned up
        sys.stderr.write(f"\nstopped; the server captured {len(server.messages)} message(s)\n")
