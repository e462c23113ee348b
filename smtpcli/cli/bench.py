"""``smtpcli bench TARGET``: load-test an SMTP server (messages/s, latency percentiles)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

import click

from smtpcli.cli.options import finish, json_option, timeout_option
from smtpcli.cli.secrets import resolve_password
from smtpcli.cli.smtp_options import (
    auth_options,
    cafile_option,
    ehlo_option,
    insecure_option,
    sni_option,
    tls_option,
    warn_insecure,
)
from smtpcli.errors import (
    ConnectError,
    IncompleteError,
    NetworkTimeout,
    SmtpcliError,
    SmtpReplyError,
    TlsError,
    UsageError,
)
from smtpcli.results import Report, Status

if TYPE_CHECKING:
    from smtpcli.loadgen.generator import BenchConfig, BenchResult, Halt
    from smtpcli.render.style import Painter
    from smtpcli.smtp.target import Target


class _Progress:
    """A one-line progress display on stderr (only when stderr is a terminal)."""

    def __init__(self, total: int | None, duration: float | None) -> None:
        self.total = total
        self.duration = duration

    def __call__(self, result: BenchResult, elapsed: float) -> None:
        done = result.accepted + result.rejected + result.failed
        if self.total:
            frac = min(1.0, done / self.total)
        elif self.duration:
            frac = min(1.0, elapsed / self.duration)
        else:
            frac = 0.0
        bar = "#" * int(frac * 30)
        rate = result.accepted / elapsed if elapsed > 0 else 0.0
        errs = result.rejected + result.failed
        sys.stderr.write(f"\r[{bar:<30}] {done} msgs  {rate:,.0f}/s  errors {errs}  ")
        sys.stderr.flush()

    @staticmethod
    def clear() -> None:
        sys.stderr.write("\r" + " " * 72 + "\r")
        sys.stderr.flush()


def _facts_lines(report: Report, paint: Painter) -> Iterable[str]:
    f = report.facts
    m = f["messages"]
    yield (f"{paint('target', 'bold')} {report.target}  tls={f['tls_mode']}"
           + (f" ({f['tls']['version']})" if f.get("tls") else "")
           + (f"  auth={f['auth']}" if f.get("auth") else "")
           + f"  concurrency={f['concurrency']}  size={f['size']}"
           + ("  pipelining" if f["pipelining_used"] else ""))
    rate = paint(f"{f['messages_per_s']:,.1f} msg/s", "bold")
    yield (f"{paint('messages', 'bold')} {m['accepted']} accepted, {m['rejected']} rejected, "
           f"{m['failed']} failed of {m['attempted']} in {f['elapsed_s']} s = {rate}  "
           f"({f['connections']['opened']} connections)")
    lat = f["latency_ms"]
    if lat:
        yield ""
        yield f"  {'stage':<8} {'count':>8} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9}  (ms)"
        for stage, row in lat.items():
            yield (f"  {stage:<8} {row['count']:>8} {row['p50']:>9.3f} {row['p90']:>9.3f} "
                   f"{row['p99']:>9.3f} {row['max']:>9.3f}")
    for err in f["errors"]:
        yield f"  {paint('reply', 'warn')} {err['stage']} {err['code']} x{err['count']}: {err['sample']}"
    for fail in f["failures"]:
        yield (f"  {paint('failure', 'fail')} {fail['stage']} {fail['kind']} x{fail['count']}: "
               f"{fail['sample']}")


def build_report(target: Target, config: BenchConfig, result: BenchResult,
                 workers: int = 1) -> Report:
    """Findings: bench.completed, bench.rejected (by code), bench.failed (network)."""
    from smtpcli.loadgen.generator import loop_name

    data = result.to_dict()
    report = Report(command="bench", target=target.display)
    report.facts = {
        **data, "tls_mode": config.tls, "auth": config.mechanism if config.user else None,
        "concurrency": config.concurrency, "size": config.size, "workers": workers,
        "pipelining_requested": config.pipelining, "rate_limit": config.rate,
        "event_loop": loop_name(),
    }
    m = data["messages"]
    report.add("bench.completed", Status.OK if m["accepted"] else Status.FAIL,
               f"{m['accepted']} of {m['attempted']} messages accepted, "
               f"{data['messages_per_s']:,.1f} msg/s",
               data={"accepted": m["accepted"], "attempted": m["attempted"],
                     "messages_per_s": data["messages_per_s"]})
    if data["errors"]:
        codes = ", ".join(f"{e['code']} at {e['stage']} x{e['count']}" for e in data["errors"])
        report.add("bench.rejected", Status.FAIL,
                   f"{m['rejected']} messages rejected; replies: {codes}",
                   data={"errors": data["errors"]})
    if data["failures"]:
        kinds = ", ".join(f"{f['kind']} at {f['stage']} x{f['count']}" for f in data["failures"])
        report.add("bench.failed", Status.FAIL, f"{m['failed']} messages failed: {kinds}",
                   data={"failures": data["failures"]})
    report.summary = (f"{m['accepted']}/{m['attempted']} accepted at "
                      f"{data['messages_per_s']:,.1f} msg/s")
    return report


_STEP = {"banner": "the greeting", "ehlo": "EHLO", "tls": "STARTTLS", "auth": "AUTH",
         "mail": "MAIL FROM", "rcpt": "RCPT TO", "data": "DATA", "dot": "the end of data"}


def _halt_error(halt: Halt, where: str, result: BenchResult) -> SmtpcliError:
    """The run stopped at a failure every further attempt would repeat: say which and why."""
    n = result.attempted
    done = f"bench stopped after {n} attempt{'' if n == 1 else 's'}"
    if halt.kind == "tls":
        return TlsError(f"{halt.text}; {done}", hint=halt.hint)
    hint = ("check --user and the password" if halt.stage == "auth"
            else "smtpcli send -v shows the dialogue")
    return SmtpReplyError(
        f"{where} refused {_STEP.get(halt.stage, halt.stage)} with {halt.text}; {done}: "
        "every further attempt would get the same permanent rejection",
        code=halt.code, reply=halt.text, hint=hint)


@click.command("bench")
@click.argument("target")
@click.option("--messages", "-n", type=click.IntRange(1), metavar="N",
              help="Send N messages (default 1000 unless --duration).")
@click.option("--duration", "-d", type=click.FloatRange(0.1), metavar="SECONDS",
              help="Send for this long instead of a fixed count.")
@click.option("--concurrency", "-c", type=click.IntRange(1, 1000), default=10, show_default=True,
              metavar="N", help="How many at once (connections, each sending in turn).")
@click.option("--size", type=click.IntRange(64, 100_000_000), default=1024, show_default=True,
              metavar="BYTES", help="Message size.")
@click.option("--rate", type=click.FloatRange(0.01), metavar="MSGS/S",
              help="Cap the sending rate (all connections together).")
@click.option("--pipelining", is_flag=True,
              help="Send MAIL, RCPT and DATA in one go when the server offers PIPELINING.")
@click.option("--recipients", type=click.IntRange(1, 1000), default=1, show_default=True,
              metavar="K", help="Recipients per message.")
@click.option("--per-connection", type=click.IntRange(0), default=0, show_default=True,
              metavar="N", help="Messages per connection before reconnecting (0: no limit).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              metavar="N", help="Processes to share the connections out to, each with its own "
                                "event loop and CPU core (for when one core is the limit).")
@tls_option()
@cafile_option
@insecure_option
@sni_option
@auth_options(mechanisms=("PLAIN", "LOGIN"), default="PLAIN")
@click.option("-f", "--from", "mail_from", default="bench@smtpcli.test", show_default=True,
              metavar="ADDR", help="Envelope sender.")
@click.option("-t", "--to", "rcpt_to", default="sink@smtpcli.test", show_default=True,
              metavar="ADDR", help="Envelope recipient (with --recipients K: local+1 .. local+K).")
@ehlo_option(default="bench.smtpcli.test")
@timeout_option(30.0, "each connect, handshake and reply")
@json_option
def command(
    target: str, messages: int | None, duration: float | None, concurrency: int, size: int,
    rate: float | None, pipelining: bool, recipients: int, per_connection: int, workers: int,
    tls_mode: str | None, cafile: str | None, insecure: bool, sni: str | None,
    user: str | None, password_file: str | None, password: str | None, auth_mech: str,
    mail_from: str, rcpt_to: str, ehlo_name: str, timeout: float, json_mode: bool,
) -> int:
    """Load-test an SMTP server: messages/s and latency percentiles.

    Keeps --concurrency connections open and sends message after message on each. The first
    session is set up alone: a failure every attempt would repeat (a wrong password, an
    untrusted certificate, a 5xx before anything was accepted) stops the run there (exit 5,
    or 3 for TLS) instead of being counted a thousand times.

    \b
    Examples:
      smtpcli bench 127.0.0.1:2525 --messages 10000 --concurrency 20
      smtpcli bench 127.0.0.1:2525 --duration 10 --pipelining --json
      smtpcli bench localhost:2587 --tls starttls --cafile ca.pem \\
          -u me --password-file pw
    """
    from smtpcli.loadgen.generator import BenchConfig, LoadGenerator, run_loop, run_processes
    from smtpcli.smtp.target import parse_target

    if messages is not None and duration is not None:
        raise UsageError("give --messages or --duration, not both")
    tgt = parse_target(target, tls=tls_mode)
    if insecure:
        warn_insecure()
    secret = resolve_password(click.get_current_context(), user, password, password_file) \
        if user else None
    config = BenchConfig(
        host=tgt.host, port=tgt.port, tls=tgt.tls.value, server_hostname=sni,
        cafile=cafile, insecure=insecure,
        messages=None if duration is not None else (messages or 1000), duration=duration,
        concurrency=concurrency, size=size, rate=rate, pipelining=pipelining,
        recipients=recipients, user=user, password=secret,
        mechanism=auth_mech.upper(), helo=ehlo_name, mail_from=mail_from, rcpt_to=rcpt_to,
        per_connection=per_connection, timeout=timeout,
    )
    if workers > 1:
        result, halted = run_processes(config, workers)
    else:
        progress = _Progress(config.messages, duration) if sys.stderr.isatty() else None
        gen = LoadGenerator(config, on_progress=progress)
        try:
            result = run_loop(gen.run())
        finally:
            if progress is not None:
                progress.clear()
        halted = gen.halted
    if halted is not None:
        raise _halt_error(halted, tgt.display, result)
    if result.accepted == 0 and result.failed == result.attempted and result.failures:
        # Nothing got through and the server never said no: the run could not complete (exit 3),
        # the same as send against that server, not a failed check (exit 1).
        (stage, kind), _ = result.failures.most_common(1)[0]
        sample = result.failure_samples[(stage, kind)]
        if kind in ("connect", "timeout") and stage == "connect":
            raise ConnectError(f"cannot connect to {tgt.display}: {sample}",
                               hint="is a server listening there? smtpcli serve starts one")
        if kind == "timeout":
            raise NetworkTimeout(
                f"no reply from {tgt.display} within {timeout:g}s during {stage} "
                f"({result.failed} of {result.attempted} messages)",
                hint="is it an SMTP server? try smtpcli session " + tgt.display)
        raise IncompleteError(f"no message got through to {tgt.display}: {kind} at {stage}: "
                              f"{sample}", hint="smtpcli send -v shows the dialogue")
    report = build_report(tgt, config, result, workers)
    return finish(report, json_mode=json_mode, facts_renderer=_facts_lines)
