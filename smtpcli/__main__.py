"""Allow ``python -m smtpcli``."""

from smtpcli.cli.main import run

run()
