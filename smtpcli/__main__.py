"""Allow ``python -m smtpcli``."""

from smtpcli.cli.entry import run

run()
