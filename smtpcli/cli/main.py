"""The root command: lazy subcommands, global options, and the one error-translation point."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from smtpcli import __version__
from smtpcli.cli.registry import COMMANDS, command_word
from smtpcli.cli.state import STATE
from smtpcli.errors import ExitCode, SmtpcliError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "SMTPCLI"}


def add_env_names(command: click.Command, prefix: str) -> None:
    """``SMTPCLI_<COMMAND>_<OPTION>`` for every option, named after the long option (click's
    own automatic names follow the Python parameter: ``json_mode``, ``ehlo_name``) and checked
    before a short shared name such as ``SMTPCLI_NAMESERVER``."""
    for param in command.params:
        longs = [o for o in param.opts if o.startswith("--")]
        if not isinstance(param, click.Option) or not longs:
            continue
        name = f"{prefix}_{longs[0][2:].upper().replace('-', '_')}"
        given = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or ())
        if name not in given:
            param.envvar = [name, *given]
    if isinstance(command, click.Group):
        for sub_name, sub in command.commands.items():
            add_env_names(sub, f"{prefix}_{sub_name.upper().replace('-', '_')}")


def _short_options_first(command: click.Command) -> None:
    """Match ``-s VALUE`` as a short option at once.

    click tries every argument as a long option first; for ``-s`` that raises NoSuchOption,
    whose constructor imports difflib to suggest close matches (9 ms of a 50 ms ``send``),
    before click falls back to the short option. Done here only when the result is the same:
    the argument is a known short option and not a long one. Relies on click's parser
    internals (stable since click 8.0); without them nothing changes."""
    make_parser = command.make_parser

    def patched(ctx: click.Context) -> Any:
        parser = make_parser(ctx)
        process = getattr(parser, "_process_opts", None)
        short, long_ = getattr(parser, "_short_opt", None), getattr(parser, "_long_opt", None)
        match_short = getattr(parser, "_match_short_opt", None)
        if process is None or short is None or long_ is None or match_short is None:
            return parser

        def process_opts(arg: str, state: Any) -> None:
            if arg[:2] in short and arg[:2] != "--" and arg.split("=", 1)[0] not in long_:
                match_short(arg, state)
            else:
                process(arg, state)

        parser._process_opts = process_opts  # type: ignore[method-assign]
        return parser

    command.make_parser = patched  # type: ignore[method-assign]


class LazyGroup(click.Group):
    """Lists commands from the registry; imports a command's module only to run it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command: click.Command = module.command
        add_env_names(command, f"SMTPCLI_{cmd_name.upper().replace('-', '_')}")
        _short_options_first(command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        items = [
            CompletionItem(name, help=help_)
            for name, (_, help_) in sorted(COMMANDS.items())
            if name.startswith(incomplete)
        ]
        items.extend(click.Command.shell_complete(self, ctx, incomplete))
        return items


EPILOG = (
    "Exit codes: 0 ok, 1 check failed (or warned with --strict), 2 usage error, "
    "3 could not complete, 4 transient SMTP rejection, 5 permanent SMTP rejection, 130 interrupted."
)


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS, epilog=EPILOG)
@click.version_option(__version__, "-V", "--version", prog_name="smtpcli")
@click.option("--traceback", is_flag=True, envvar="SMTPCLI_TRACEBACK",
              help="Show a Python traceback on errors (for bug reports).")
@click.option("--profile", metavar="NAME", envvar="SMTPCLI_PROFILE",
              help="Option defaults from [profiles.NAME] in $XDG_CONFIG_HOME/smtpcli/config.toml.")
@click.pass_context
def cli(ctx: click.Context, traceback: bool, profile: str | None) -> None:
    """smtpcli: send, probe, check and explain mail from the command line.

    Every command takes --json; run 'smtpcli COMMAND -h' for its options.
    """
    STATE.traceback = STATE.traceback or traceback
    if profile:
        from smtpcli.config import profile_default_map

        ctx.default_map = profile_default_map(profile, list(COMMANDS))


def _report_error(message: str, kind: str, code: int) -> None:
    click.echo(f"smtpcli: {message}", err=True)
    if STATE.json:
        from smtpcli.render.json_out import dumps, error_document

        click.echo(dumps(error_document(STATE.command, kind, message, code)))


def _click_one_line(exc: click.ClickException) -> str:
    """A click error as one line: what was wrong, and where to look (never the usage block)."""
    message = " ".join(exc.format_message().split()).rstrip(".")
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and ctx.command_path:
        return f"{message} (see '{ctx.command_path} --help')"
    return message


# Commands whose process may end without the interpreter's teardown (freeing every module
# and object: ~10 ms of a 50 ms `send`) once their output is flushed: they write only to
# stdout/stderr and leave no thread or file behind. None: --help, --version, usage errors.
FAST_EXIT = {None, "send", "explain", "bench"}


def run() -> None:
    """Console-script entry: ``main()``, then a fast exit for the commands in FAST_EXIT."""
    try:
        main()
    except SystemExit as exc:
        if STATE.command not in FAST_EXIT:
            raise
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise exc from None  # let the normal exit deal with a closed stream
        os._exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: run the CLI and turn every outcome into one exit code."""
    args = sys.argv[1:] if argv is None else argv
    # As click reads the flag: SMTPCLI_TRACEBACK=0 (or false/no/off) means no.
    env = os.environ.get("SMTPCLI_TRACEBACK", "").strip().lower()
    STATE.traceback = "--traceback" in args or env not in ("", "0", "false", "no", "off", "f", "n")
    # Known before parsing, so that even a usage error is a JSON document in --json mode.
    STATE.json = "--json" in args
    STATE.command = command_word(args, COMMANDS)
    from smtpcli.render.terminal import help_width

    # click's help formatter would import shutil for this (bz2, lzma, zlib with it).
    cli.context_settings["terminal_width"] = help_width()
    from smtpcli.interrupt import interruptible, say_interrupted

    try:
        with interruptible():
            rv = cli.main(args, prog_name="smtpcli", standalone_mode=False)
        code = int(rv) if isinstance(rv, int) else 0
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()  # `smtpcli dkim` alone: the help is the answer
        code = exc.exit_code
    except click.ClickException as exc:
        _report_error(_click_one_line(exc), "usage", ExitCode.USAGE)
        code = exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        say_interrupted()
        code = ExitCode.INTERRUPTED
    except SmtpcliError as exc:
        if STATE.traceback:
            import traceback as tb

            tb.print_exc()
        _report_error(exc.one_line(), exc.kind, int(exc.exit_code))
        code = int(exc.exit_code)
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error worth a message.
        sys.stderr.close()
        code = ExitCode.OK
    except Exception as exc:  # the one place an unexpected error becomes one line
        if STATE.traceback:
            raise
        _report_error(
            f"internal error: {type(exc).__name__}: {exc} (run with --traceback and report it)",
            "internal", ExitCode.INCOMPLETE,
        )
        code = ExitCode.INCOMPLETE
    sys.exit(code)
