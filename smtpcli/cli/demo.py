"""``smtpcli demo``: run the main commands against a local capture server (thin: options ->
smtpcli.demo.runner)."""

from __future__ import annotations

import click

from smtpcli.cli.options import json_option

STEPS = ("send", "probe", "session", "mailbox", "explain", "check-domain")


@click.command("demo")
@click.option("--step", "steps", multiple=True, type=click.Choice(STEPS),
              help="Run only this step (repeatable); default: all, in order.")
@click.option("--keep-serving", is_flag=True,
              help="Keep the server running after the steps until Ctrl-C, to try commands.")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="Read the AUTH password from the first line of FILE (the demo user's; "
                   "default: a random one).")
@json_option
def command(steps: tuple[str, ...], keep_serving: bool, password_file: str | None,
            json_mode: bool) -> int:
    """Run the main commands against a local server, offline.

    Starts a capture server on loopback and runs send, probe, session, explain and
    check-domain against it, showing each command line. Exit 0 when every step did what it
    should (the demo zone's warnings are expected).

    \b
    Examples:
      smtpcli demo
      smtpcli demo --step send --step session --keep-serving
      smtpcli demo --json
    """
    from smtpcli.demo.runner import DemoOptions, run_demo

    return run_demo(DemoOptions(steps=steps, json_mode=json_mode, keep_serving=keep_serving,
                                password_file=password_file))
