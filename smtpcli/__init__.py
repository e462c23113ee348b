"""smtpcli: SMTP testing and diagnostics from the command line."""

__version__ = "0.1.0"
