"""A real Postfix on loopback, configured by the test: its own config, queue and mail store.

Started with ``postfix -c DIR start`` (needs root and Debian's postfix package), listening on a
free 127.0.0.1 port, delivering mail for ``pf.test`` into a Maildir, optionally with STARTTLS
(a trustme certificate), a relay host for every other domain, and
``smtpd_forbid_bare_newline`` for the SMTP smuggling tests. Logs go to a file in the instance
directory, so a failing test can show them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers.certs import CertFiles

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
MAIL_DOMAIN = "pf.test"


def interop_unavailable(reason: str) -> None:
    """Skip, except in CI (SMTPCLI_REQUIRE_INTEROP set) where a missing peer is a failure."""
    if os.environ.get("SMTPCLI_REQUIRE_INTEROP"):
        pytest.fail(f"interop peer required but unavailable: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.settimeout(2)
                return sock.recv(4).startswith(b"220")
        except OSError:
            time.sleep(0.1)
    return False


@dataclass
class PostfixInstance:
    """One Postfix instance in ``root``; ``port`` is its smtpd on 127.0.0.1."""

    root: Path
    port: int = field(default_factory=free_port)
    tls: CertFiles | None = None
    relayhost: str | None = None
    forbid_bare_newline: bool = False
    extra: dict[str, str] = field(default_factory=dict)

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
            "smtpd_banner": "$myhostname ESMTP Postfix (smtpcli test)",
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

    def start(self) -> PostfixInstance:
        self._write_config()
        for step in (("check",), ("start",)):
            done = self._postfix(*step)
            if done.returncode != 0:
                raise RuntimeError(f"postfix {step[0]} failed: {done.stderr}{self.log()}")
        if not _wait_listening(self.port, time.monotonic() + 15):
            self.stop()
            raise RuntimeError(f"postfix did not listen on {self.port}: {self.log()}")
        return self

    def stop(self) -> None:
        pid_file = self.root / "queue" / "pid" / "master.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = None
        self._postfix("stop")
        deadline = time.monotonic() + 10
        while pid and time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)

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


@pytest.fixture
def postfix() -> Iterator[object]:
    """Factory: ``postfix(tls=certs.valid, relayhost="[127.0.0.1]:PORT", ...)``."""
    reason = postfix_available()
    if reason:
        interop_unavailable(reason)
    instances: list[PostfixInstance] = []

    def factory(**kw: object) -> PostfixInstance:
        # Not under pytest's tmp_path: its 0700 parents keep the postfix user out. A short
        # path too, since Postfix's UNIX-domain sockets live under the queue directory.
        root = Path(tempfile.mkdtemp(prefix="smtpcli-pf-"))
        os.chmod(root, 0o755)
        instance = PostfixInstance(root=root, **kw)  # type: ignore[arg-type]
        instances.append(instance)
        return instance.start()

    yield factory
    for instance in instances:
        instance.stop()
        shutil.rmtree(instance.root, ignore_errors=True)


def require_tool(name: str) -> str:
    """Path of a Debian tool needed by an interop test (skip or fail when missing)."""
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if not path:
        interop_unavailable(f"{name} is not installed")
    assert path is not None
    return path
