"""The console script's entry: a quick start for one-shot commands, then the CLI.

``send`` (one message), ``explain`` of codes or one bounce, ``--help`` and ``--version`` are
over in tens of milliseconds, most of them start-up. For them, before click is imported:

- Standard modules that the libraries import at their top but use only on paths such a
  command may not take are loaded on first use instead (:class:`_DeferredModule`):
  ``ssl`` and ``hmac`` (smtplib imports both; only STARTTLS, SMTPS and CRAM-MD5 use them, and
  each loads OpenSSL's libraries: about 8 ms of a 60 ms plain-text send); ``random``,
  ``ipaddress``, ``urllib.parse`` and ``calendar`` (imported by email.utils and urllib.parse
  for Message-IDs, IPv6 literals, RFC 2231 parameters and date parsing, which the send path
  does without); ``tokenize`` (inspect's, for source code); ``selectors`` and ``array``
  (socket's, for sendfile and file descriptors). A path that uses one loads it then.
- The cycle collector is off: the ~100,000 objects created while click, smtplib and email
  are imported live until exit, and the collections they trigger find nothing to free (about
  4 ms). The work after start-up is bounded (one message, one lookup) and the process ends
  as soon as its output is flushed (``main.run``).

Every other command (servers, batches, mailboxes, load, threads) starts exactly as before:
a module loaded on first use is not safe to share between threads, and a long run needs the
collector.
"""

from __future__ import annotations

import sys
import types

# Nothing else before the quick start, not even typing: the collector is to be off for all
# of start-up (typing alone is about 30 M instructions of it).
from smtpcli.cli.registry import COMMANDS, command_word

# Modules deferred for one-shot commands (see above); each must be pure Python, with a
# loader that has exec_module, and not change its own globals after import.
DEFERRED_MODULES = ("ssl", "hmac", "random", "ipaddress", "urllib.parse", "calendar", "tokenize",
                    "selectors", "array")


def is_one_shot(args: list[str], commands: dict[str, tuple[str, str]]) -> bool:
    """True for the bounded, single-threaded runs that :func:`quick_start` is for."""
    command = command_word(args, commands)
    if command is None:  # --help, --version, a usage error
        return True
    if command == "send":
        return True
    # explain --mailbox reads a whole Maildir or mbox: a long run that wants the collector.
    return command == "explain" and not any(a == "--mailbox" or a.startswith("--mailbox=")
                                            for a in args)


class _DeferredModule(types.ModuleType):
    """A module whose body runs on the first access to an attribute it does not have yet.

    Unlike ``importlib.util.LazyLoader``, whose module loads on *any* attribute access, the
    metadata an ``import`` statement reads (``__spec__``: Python 3.11 checks
    ``__spec__._initializing`` on every import of a module already in sys.modules) is there
    from the start, so ``import ssl`` in smtplib binds the module without loading it.
    Not thread-safe: only single-threaded one-shot commands use it (:func:`is_one_shot`)."""

    def __getattr__(self, attr: str) -> object:
        # Only called for attributes not found: before the body ran, all but the metadata.
        object.__setattr__(self, "__class__", types.ModuleType)  # an ordinary module from now on
        spec = self.__spec__
        loader = getattr(spec, "loader", None)
        if loader is None:
            raise AttributeError(attr)
        try:
            loader.exec_module(self)
        except BaseException:
            sys.modules.pop(self.__name__, None)  # as a failed import leaves it
            raise
        return getattr(self, attr)


def defer_import(name: str) -> None:
    """Put module ``name`` in sys.modules, to be loaded on its first real use."""
    if name in sys.modules:
        return
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
        return
    module = importlib.util.module_from_spec(spec)
    module.__class__ = _DeferredModule
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:  # as an import binds a submodule on its package (``urllib.parse``)
        setattr(sys.modules[parent], child, module)


def quick_start() -> None:
    """Collector off, rarely used modules deferred (see the module docstring)."""
    import gc

    gc.disable()
    for name in DEFERRED_MODULES:
        defer_import(name)


def run() -> None:
    """Console-script entry (``smtpcli``, ``python -m smtpcli``)."""
    if is_one_shot(sys.argv[1:], COMMANDS):
        quick_start()
    from smtpcli.cli.main import run as run_cli

    run_cli()
