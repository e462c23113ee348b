"""A real Postfix on loopback, configured by the test: its own config, queue and mail store.

Started with ``postfix -c DIR start`` (needs root and Debian's postfix package), listening on a
free 127.0.0.1 port, delivering mail for ``pf.test`` into a Maildir, optionally with STARTTLS
(a trustme certificate), a relay host for every other domain, and
``smtpd_forbid_bare_newline`` for the SMTP smuggling tests. Logs go to a file in the instance
directory, so a failing test can show them.

Starting and stopping Postfix costs about a second, so instances are shared: one per
configuration per test process (``postfix_pool``, session-scoped; each xdist worker has its
own), started on first use. A test sees only what happened after it got the instance (the
``postfix`` fixture's ``PostfixView``: the queue drained, then the Maildir and log marked).
Tests that use Postfix carry ``xdist_group`` marks, so each instance's users share a worker.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers.certs import CertFiles

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
MAIL_DOMAIN = "pf.test"
# Tries at a free port: it is free when chosen, but another process may bind it before Postfix
# does (parallel workers); the banner's token tells our instance from anyone else's.
START_TRIES = 5


def interop_unavailable(reason: str) -> None:
    """Skip, except in CI (SMTPCLI_REQUIRE_INTEROP set) where a missing peer is a failure."""
    if os.environ.get("SMTPCLI_REQUIRE_INTEROP"):
        pytest.fail(f"interop peer required but unavailable: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _banner(port: int, deadline: float) -> bytes:
    """The greeting of whatever listens on ``port`` (b"" if nothing does by ``deadline``)."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.settimeout(2)
                data = b""
                while not data.endswith(b"\n") and len(data) < 512:
                    chunk = sock.recv(512)
                    if not chunk:
                        break
                    data += chunk
                return data
        except OSError:
            time.sleep(0.05)
    return b""


@dataclass
class PostfixInstance:
    """One Postfix instance in ``root``; ``port`` is its smtpd on 127.0.0.1."""

    root: Path
    port: int = field(default_factory=free_port)
    tls: CertFiles | None = None
    relayhost: str | None = None
    forbid_bare_newline: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    token: str = field(default_factory=lambda: secrets.token_hex(4))

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def maildir(self) -> Path:
        return self.root / "mail" / "inbox"

    @property
    def log_path(self) -> Path:
        return self.root / "maillog"

    def main_cf(self) -> dict[str, str]:
        import pwd

        pw = pwd.getpwnam("postfix")
        conf = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.root / "queue"),
            "data_directory": str(self.root / "data"),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "mx.pf.test",
            "mydomain": MAIL_DOMAIN,
            "myorigin": MAIL_DOMAIN,
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "virtual_mailbox_domains": MAIL_DOMAIN,
            "virtual_mailbox_base": str(self.root / "mail"),
            "virtual_mailbox_maps": "static:inbox/",
            "virtual_uid_maps": f"static:{pw.pw_uid}",
            "virtual_gid_maps": f"static:{pw.pw_gid}",
            "maillog_file": str(self.log_path),
            "maillog_file_prefixes": str(self.root),
            # Nothing here may ask the machine's resolver: next hops are IP literals.
            "smtp_dns_support_level": "disabled",
            "smtpd_peername_lookup": "no",
            "smtpd_banner": f"$myhostname ESMTP Postfix (smtpcli test {self.token})",
            "smtpd_forbid_bare_newline": "yes" if self.forbid_bare_newline else "no",
            "smtpd_forbid_bare_newline_exclusions": "",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
        }
        if self.tls is not None:
            conf.update({
                "smtpd_tls_cert_file": str(self.tls.cert_path),
                "smtpd_tls_key_file": str(self.tls.key_path),
                "smtpd_tls_security_level": "may",
                "smtpd_tls_loglevel": "1",
            })
        if self.relayhost:
            conf["relayhost"] = self.relayhost
        conf.update(self.extra)
        return conf

    def _write_config(self) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("queue", "data", "mail"):
            (self.root / sub).mkdir(exist_ok=True)
        shutil.chown(self.root / "data", "postfix", "postfix")
        shutil.chown(self.root / "mail", "postfix", "postfix")
        lines = [f"{k} = {v}" for k, v in self.main_cf().items()]
        (self.config_dir / "main.cf").write_text("\n".join(lines) + "\n")
        master = []
        for line in Path("/etc/postfix/master.cf").read_text().splitlines():
            cols = line.split()
            if line.startswith(("#", " ", "\t")) or len(cols) < 8:
                master.append(line)
                continue
            if cols[0] == "smtp" and cols[1] == "inet":
                cols[0] = f"127.0.0.1:{self.port}"
            cols[4] = "n"  # no chroot: the instance lives in a temporary directory
            master.append(" ".join(cols))
        (self.config_dir / "master.cf").write_text("\n".join(master) + "\n")

    def _postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([POSTFIX, "-c", str(self.config_dir), *args],
                              capture_output=True, text=True, timeout=30)

    @property
    def _pid_file(self) -> Path:
        return self.root / "queue" / "pid" / "master.pid"

    def _master_pid(self) -> int | None:
        """The running master of this instance: the pid in its pid file, if that process runs
        in this instance's queue directory (a stale file's pid may belong to anyone by now)."""
        try:
            pid = int(self._pid_file.read_text().split()[0])
            if Path(f"/proc/{pid}/cwd").resolve() == (self.root / "queue").resolve():
                return pid
        except (OSError, ValueError, IndexError):
            pass
        return None

    def start(self) -> PostfixInstance:
        """Start, on another free port when the chosen one turns out to be taken."""
        for attempt in range(START_TRIES):
            if attempt:
                self.port = free_port()
            self._write_config()
            self._pid_file.unlink(missing_ok=True)
            done = self._postfix("check")
            if done.returncode != 0:
                raise RuntimeError(f"postfix check failed: {done.stderr}{self.log()}")
            # "check" just did what start would do again (postfix-script's check-fatal and
            # check-warn): the quick-start flag skips the repeat.
            (self.root / "queue" / "quick-start").touch()
            log_before = len(self.log())
            done = self._postfix("start")
            if done.returncode != 0:
                # The master exits at once when it cannot bind; anything else is fatal here.
                self.stop()
                if "Address already in use" in self.log()[log_before:]:
                    continue
                raise RuntimeError(f"postfix start failed: {done.stderr}{self.log()}")
            # Started: but whatever answers on the port must be this instance.
            if self.token.encode() in _banner(self.port, time.monotonic() + 15):
                return self
            self.stop()
        raise RuntimeError(f"postfix did not listen on a free port: {self.log()}")

    def terminate(self) -> int | None:
        """SIGTERM to the master, as ``postfix stop`` sends it (without that script's polling
        in whole seconds): it ends its children and exits. The master's pid, if it ran."""
        pid = self._master_pid()
        if pid is None:
            return None
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return None
        return pid

    def kill_group(self) -> int | None:
        """SIGKILL to the master's process group (the master and every daemon it started)."""
        pid = self._master_pid()
        if pid is None:
            return None
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return self.terminate()  # not a group leader after all: the orderly way
        return pid

    @staticmethod
    def wait_gone(pid: int | None, timeout: float = 10.0) -> None:
        """Until ``pid`` has exited. A zombie counts as gone: the master was daemonized, so
        reaping it is up to PID 1, which here may take a second or more to get round to it."""
        deadline = time.monotonic() + timeout
        while pid and time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                    state = fh.read().rpartition(")")[2].split()[0]
            except (FileNotFoundError, ProcessLookupError, IndexError):
                break
            if state in ("Z", "X"):
                break
            time.sleep(0.02)

    def stop(self) -> None:
        self.wait_gone(self.terminate())

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def delivered(self, count: int = 1, timeout: float = 15.0) -> list[bytes]:
        """Messages in the Maildir, waiting until at least ``count`` arrived."""
        deadline = time.monotonic() + timeout
        while True:
            files = sorted((self.maildir / "new").glob("*")) if self.maildir.exists() else []
            if len(files) >= count or time.monotonic() > deadline:
                return [f.read_bytes() for f in files]
            time.sleep(0.1)

    def flush(self) -> None:
        """Ask the queue manager to retry deferred mail now."""
        self._postfix("flush")

    def queue_empty(self) -> bool:
        """Nothing in the incoming, active or deferred queue (``postqueue -p``)."""
        done = subprocess.run([shutil.which("postqueue") or "/usr/sbin/postqueue", "-c",
                               str(self.config_dir), "-p"], capture_output=True, text=True,
                              timeout=30)
        return "Mail queue is empty" in done.stdout


class PostfixView:
    """A test's view of a shared instance: mail and log lines from after the test got it.

    Created once the queue is empty, so mail another test left in flight cannot arrive later
    and be counted here. Everything else (port, maildir, config_dir...) is the instance's.
    """

    def __init__(self, instance: PostfixInstance) -> None:
        self.instance = instance
        deadline = time.monotonic() + 30
        while not instance.queue_empty() and time.monotonic() < deadline:
            instance.flush()
            time.sleep(0.1)
        self._seen = {p.name for p in self._files()}
        self._log_offset = len(instance.log())

    def __getattr__(self, name: str) -> object:
        return getattr(self.instance, name)

    def _files(self) -> list[Path]:
        new = self.instance.maildir / "new"
        return sorted(new.glob("*")) if new.exists() else []

    def delivered(self, count: int = 1, timeout: float = 15.0) -> list[bytes]:
        """Messages delivered since this view, waiting until at least ``count`` arrived."""
        deadline = time.monotonic() + timeout
        while True:
            files = [f for f in self._files() if f.name not in self._seen]
            if len(files) >= count or time.monotonic() > deadline:
                return [f.read_bytes() for f in files]
            time.sleep(0.1)

    def log(self) -> str:
        """The instance's log since this view was made."""
        return self.instance.log()[self._log_offset:]


def postfix_available() -> str | None:
    """None when a Postfix instance can be started here, else why not."""
    if not os.path.exists(POSTFIX):
        return "postfix is not installed (apt-get install postfix)"
    if os.geteuid() != 0:
        return "starting Postfix needs root"
    try:
        import pwd

        pwd.getpwnam("postfix")
    except KeyError:
        return "no postfix user on this machine"
    return None


class PostfixPool:
    """This process's Postfix instances, one per configuration, started on first use."""

    def __init__(self) -> None:
        self.instances: dict[str, PostfixInstance] = {}

    @staticmethod
    def _key(kw: dict[str, object]) -> str:
        tls = kw.get("tls")
        shown = {**kw, "tls": str(tls.cert_path) if isinstance(tls, CertFiles) else tls}
        return repr(sorted(shown.items()))

    def get(self, **kw: object) -> PostfixInstance:
        """The running instance with this configuration (PostfixInstance's fields)."""
        key = self._key(kw)
        if key not in self.instances:
            # Not under pytest's tmp_path: its 0700 parents keep the postfix user out. A short
            # path too, since Postfix's UNIX-domain sockets live under the queue directory.
            root = Path(tempfile.mkdtemp(prefix="smtpcli-pf-"))
            os.chmod(root, 0o755)
            instance = PostfixInstance(root=root, **kw)  # type: ignore[arg-type]
            try:
                instance.start()
            except BaseException:
                shutil.rmtree(root, ignore_errors=True)
                raise
            self.instances[key] = instance
        return self.instances[key]

    def stop_all(self) -> None:
        """Stop every instance at the end of the session: SIGKILL to each master's process
        group (the master runs setsid()), since a SIGTERMed master takes a second or two to
        exit and nothing of these throwaway instances needs an orderly shutdown."""
        pids = [instance.kill_group() for instance in self.instances.values()]
        for instance, pid in zip(self.instances.values(), pids, strict=True):
            instance.wait_gone(pid)
            shutil.rmtree(instance.root, ignore_errors=True)
        self.instances.clear()


@pytest.fixture(scope="session")
def postfix_pool() -> Iterator[PostfixPool]:
    """Session-wide (per xdist worker) Postfix instances; skips (fails in CI) without Postfix."""
    reason = postfix_available()
    if reason:
        interop_unavailable(reason)
    pool = PostfixPool()
    yield pool
    pool.stop_all()


@pytest.fixture
def postfix(postfix_pool: PostfixPool) -> Callable[..., PostfixView]:
    """Factory: ``postfix(tls=certs.valid, relayhost="[127.0.0.1]:PORT", ...)``, a view of the
    shared instance with that configuration (see PostfixView)."""

    def factory(**kw: object) -> PostfixView:
        return PostfixView(postfix_pool.get(**kw))

    return factory


def require_tool(name: str) -> str:
    """Path of a Debian tool needed by an interop test (skip or fail when missing)."""
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if not path:
        interop_unavailable(f"{name} is not installed")
    assert path is not None
    return path
