"""Real mail servers besides Postfix, on loopback, started and stopped by the tests: Exim,
Postfix with SASL through Dovecot, Dovecot's submission service, and OpenSMTPD.

Configurations are the templates in ``tests/servers/lab/`` (from ``../shared/mta-lab/``), filled
in with free ports and a per-instance directory. Each server is a session-scoped fixture: one
instance per pytest worker, shared by every test of that worker. Certificates are issued at test
time by the session's trustme CA. Exim and OpenSMTPD are not installed as Debian packages (they
conflict with Postfix) but unpacked under ``SMTPCLI_MTA_ROOT`` (default ``/opt/smtpcli-mta``) by
``.ci/run``. Every domain but ``mta.test`` is routed to 127.0.0.9:9, where nothing listens.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers.certs import CertFiles, TlsCerts
from tests.servers.postfix import PostfixInstance, interop_unavailable, postfix_available

MTA_ROOT = Path(os.environ.get("SMTPCLI_MTA_ROOT", "/opt/smtpcli-mta"))
EXIM = MTA_ROOT / "exim" / "usr" / "sbin" / "exim4"
SMTPD_ROOT = MTA_ROOT / "opensmtpd"
SMTPD = SMTPD_ROOT / "usr" / "sbin" / "smtpd"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
TEMPLATES = Path(__file__).resolve().parent / "lab"

DOMAIN = "mta.test"
USER = "alice"
PASSWORD = "lab-Secret-42"  # a test account of servers that live for one test session
DOVECOT_HOST = "127.0.0.2"  # see lab/dovecot.conf: not the client's own address
START_TIMEOUT = 15.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_greeting(host: str, port: int, deadline: float, proc: subprocess.Popen | None = None) -> bool:
    """True once ``host:port`` greets with 220 (False at the deadline or when ``proc`` died)."""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5) as sock:
                sock.settimeout(2)
                return sock.recv(4).startswith(b"220")
        except OSError:
            time.sleep(0.05)
    return False


def fill(template: str, values: dict[str, object]) -> str:
    text = (TEMPLATES / template).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    assert "@MTA@" not in text and "@MX@" not in text, template
    return text


def instance_dir(prefix: str) -> Path:
    """Not under pytest's 0700 tmp_path: the servers' own users must reach it."""
    root = Path(tempfile.mkdtemp(prefix=f"smtpcli-{prefix}-"))
    os.chmod(root, 0o755)
    return root


def install_cert(cert: CertFiles, root: Path, owner: str = "root") -> None:
    shutil.copyfile(cert.cert_path, root / "server.pem")
    shutil.copyfile(cert.key_path, root / "server.key")
    for name, mode in (("server.pem", 0o644), ("server.key", 0o640)):
        shutil.chown(root / name, "root", owner)
        os.chmod(root / name, mode)


def maildir_messages(maildir: Path) -> list[bytes]:
    files = [p for sub in ("new", "cur") if (maildir / sub).is_dir() for p in (maildir / sub).iterdir()]
    out = []
    for path in sorted(files):
        try:
            out.append(path.read_bytes())
        except OSError:
            continue  # moved from new/ to cur/ meanwhile
    return out


def wait_for_tag(maildir: Path, tag: str, count: int = 1, timeout: float = 10.0) -> list[bytes]:
    """Messages in ``maildir`` carrying ``tag``, waiting until ``count`` arrived (or timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in maildir_messages(maildir) if tag.encode() in m]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


@dataclass(frozen=True)
class Listener:
    """One listening socket of a lab server, as the tests address it."""

    server: str  # exim, postfix, dovecot, opensmtpd
    role: str  # default, hardened, lax, submission, submissions
    host: str
    port: int
    tls: str  # none | starttls | implicit

    @property
    def name(self) -> str:
        return f"{self.server}-{self.role}"

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'smtps' if self.tls == 'implicit' else 'smtp'}://{self.host}:{self.port}"


@dataclass
class LabServer:
    """Base of the lab servers: an instance directory, processes, listeners, a Maildir."""

    root: Path
    listeners: dict[str, Listener] = field(default_factory=dict)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def maildir(self) -> Path:
        raise NotImplementedError

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.root.rglob("*log"))
                       if p.is_file())

    def delivered(self, tag: str, count: int = 1, timeout: float = 10.0) -> list[bytes]:
        return wait_for_tag(self.maildir, tag, count, timeout)

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc)
        # Helper processes (OpenSMTPD's privsep children, Exim's deliveries) may still write
        # for a moment after their parent is gone.
        for _ in range(20):
            shutil.rmtree(self.root, ignore_errors=True)
            if not self.root.exists():
                break
            time.sleep(0.1)


# ---- Exim ------------------------------------------------------------------------------------


@dataclass
class EximLab(LabServer):
    @property
    def maildir(self) -> Path:
        return self.root / "mail" / USER

    @property
    def config(self) -> Path:
        return self.root / "exim.conf"

    def start(self, cert: CertFiles) -> EximLab:
        ports = {"MX": free_port(), "HARD": free_port(), "SUB": free_port(), "SMTPS": free_port(),
                 "LAX": free_port()}
        for sub in ("spool", "spool-lax", "log", f"mail/{USER}"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "passwd").write_text(f"{USER}: {PASSWORD}\n")
        install_cert(cert, self.root, "Debian-exim")
        subprocess.run(["chown", "-R", "Debian-exim:Debian-exim", str(self.root)], check=True)
        # Exim refuses a -C file that its own user could change.
        self.config.write_text(fill("exim.conf", {"MTA": self.root, "EXIM": EXIM, **ports}))
        shutil.chown(self.config, "root", "root")
        shutil.chown(self.root / "passwd", "root", "Debian-exim")
        os.chmod(self.root / "passwd", 0o640)
        self.listeners = {
            "default": Listener("exim", "default", "127.0.0.1", ports["MX"], "starttls"),
            "hardened": Listener("exim", "hardened", "127.0.0.1", ports["HARD"], "starttls"),
            "submission": Listener("exim", "submission", "127.0.0.1", ports["SUB"], "starttls"),
            "submissions": Listener("exim", "submissions", "127.0.0.1", ports["SMTPS"], "implicit"),
            "lax": Listener("exim", "lax", "127.0.0.1", ports["LAX"], "starttls"),
        }
        out = open(self.root / "log" / "stderr-log", "ab")  # noqa: SIM115 - closed with the process
        for extra in ([], ["-DLAX"]):
            self.procs.append(subprocess.Popen([str(EXIM), "-C", str(self.config), *extra, "-bdf"],
                                               stdout=out, stderr=out, stdin=subprocess.DEVNULL))
        out.close()
        deadline = time.monotonic() + START_TIMEOUT
        for key, proc in (("default", self.procs[0]), ("lax", self.procs[1])):
            if not wait_greeting("127.0.0.1", self.listeners[key].port, deadline, proc):
                log = self.log()
                self.stop()
                raise RuntimeError(f"exim ({key}) did not start: {log}")
        return self

    def flush(self) -> None:
        """Run the queue once (deliveries are forked; a deferred one waits for this)."""
        subprocess.run([str(EXIM), "-C", str(self.config), "-qff"], capture_output=True, timeout=30)


def exim_available() -> str | None:
    if os.geteuid() != 0:
        return "starting Exim needs root"
    if not EXIM.exists():
        return f"Exim is not unpacked at {EXIM} (see .ci/run)"
    try:
        pwd.getpwnam("Debian-exim")
    except KeyError:
        return "no Debian-exim user on this machine (see .ci/run)"
    return None


# ---- Dovecot (SASL for Postfix, and its own submission service) ------------------------------


@dataclass
class DovecotLab(LabServer):
    @property
    def maildir(self) -> Path:  # Dovecot submission relays on; nothing is stored here
        return self.root / "home"

    @property
    def auth_socket(self) -> Path:
        return self.root / "run" / "auth-postfix"

    def stop(self) -> None:
        """End of session (or a failed start): SIGKILL to the master's process group. A
        SIGTERMed Dovecot master waits for its services and takes ~1.1 s; nothing of this
        throwaway instance needs an orderly shutdown."""
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        super().stop()

    def start(self, cert: CertFiles, relay_port: int) -> DovecotLab:
        ports = {"SUB": free_port(DOVECOT_HOST), "SMTPS": free_port(DOVECOT_HOST), "RELAY": relay_port}
        for sub in ("run", "state", "home"):
            (self.root / sub).mkdir(exist_ok=True)
        install_cert(cert, self.root)
        (self.root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        conf = self.root / "dovecot.conf"
        conf.write_text(fill("dovecot.conf", {"MTA": self.root, "NAME": self.root.name, **ports}))
        self.listeners = {
            "submission": Listener("dovecot", "submission", DOVECOT_HOST, ports["SUB"], "starttls"),
            "submissions": Listener("dovecot", "submissions", DOVECOT_HOST, ports["SMTPS"], "implicit"),
        }
        log = open(self.root / "stderr-log", "ab")  # noqa: SIM115 - closed with the process
        # Own process group: stop() kills the master with every child it forked.
        self.procs.append(subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=log, stderr=log,
                                           stdin=subprocess.DEVNULL, start_new_session=True))
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        if not wait_greeting(DOVECOT_HOST, ports["SUB"], deadline, self.procs[0]):
            log = self.log()
            self.stop()
            raise RuntimeError(f"dovecot did not start: {log}")
        while not self.auth_socket.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self


@dataclass
class PostfixSasl(PostfixInstance):
    """Postfix as in lab/postfix-main.cf: mta.test with alice and postmaster, SASL through
    Dovecot, and the hardened, submission and submissions listeners beside the default one."""

    sasl_path: str = ""
    hard_port: int = field(default_factory=free_port)
    sub_port: int = field(default_factory=free_port)
    smtps_port: int = field(default_factory=free_port)

    def main_cf(self) -> dict[str, str]:
        conf = super().main_cf()
        conf.update({
            "myhostname": "mx.mta.test", "mydomain": DOMAIN, "myorigin": DOMAIN,
            "virtual_mailbox_domains": DOMAIN,
            "virtual_mailbox_maps": f"texthash:{self.root / 'vmailbox'}",
            "relayhost": "[127.0.0.9]:9",
            # Debian's banner, plus the instance token the base class checks it is talking to.
            "smtpd_banner": f"$myhostname ESMTP Postfix (Debian/GNU) {self.token}",
            "smtpd_sasl_type": "dovecot", "smtpd_sasl_path": self.sasl_path,
            "smtpd_sasl_auth_enable": "yes", "smtpd_tls_auth_only": "no",
            "smtpd_relay_restrictions":
                "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
            # Postfix's tarpit (1 s per error after the tenth) would make the relay probe's 16
            # refused forms take 20 s; no verdict depends on it.
            "smtpd_error_sleep_time": "0",
        })
        return conf

    def _write_config(self) -> None:
        self.root.mkdir(exist_ok=True)
        (self.root / "vmailbox").write_text(
            "".join(f"{u}@{DOMAIN} inbox/\n" for u in (USER, "postmaster", "root")))
        super()._write_config()
        services = f"""
127.0.0.1:{self.hard_port} inet n - n - - smtpd
  -o syslog_name=postfix/hardened
  -o mynetworks=
  -o disable_vrfy_command=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_forbid_bare_newline=yes
127.0.0.1:{self.sub_port} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
127.0.0.1:{self.smtps_port} inet n - n - - smtpd
  -o syslog_name=postfix/submissions
  -o smtpd_tls_wrappermode=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
"""
        with open(self.config_dir / "master.cf", "a") as fh:
            fh.write(services)

    @property
    def lab_listeners(self) -> dict[str, Listener]:
        return {
            "default": Listener("postfix", "default", "127.0.0.1", self.port, "starttls"),
            "hardened": Listener("postfix", "hardened", "127.0.0.1", self.hard_port, "starttls"),
            "submission": Listener("postfix", "submission", "127.0.0.1", self.sub_port, "starttls"),
            "submissions": Listener("postfix", "submissions", "127.0.0.1", self.smtps_port, "implicit"),
        }


@dataclass
class PostfixDovecot:
    """Postfix (SASL through Dovecot) and Dovecot's submission relaying into that Postfix."""

    postfix: PostfixSasl
    dovecot: DovecotLab

    @property
    def listeners(self) -> dict[str, Listener]:
        return self.postfix.lab_listeners

    def stop(self) -> None:
        self.postfix.wait_gone(self.postfix.kill_group())  # end of session: no orderly stop
        shutil.rmtree(self.postfix.root, ignore_errors=True)
        self.dovecot.stop()


def dovecot_available() -> str | None:
    reason = postfix_available()
    if reason:
        return reason
    if not os.path.exists(DOVECOT):
        return "dovecot is not installed (apt-get install dovecot-core dovecot-submissiond)"
    if not os.path.exists("/usr/lib/dovecot/submission"):
        return "dovecot-submissiond is not installed"
    return None


# ---- OpenSMTPD -------------------------------------------------------------------------------



@dataclass
class OpenSmtpdLab(LabServer):
    @property
    def maildir(self) -> Path:
        return self.root / "mail" / USER

    def start(self, cert: CertFiles) -> OpenSmtpdLab:
        """OpenSMTPD has compiled-in spool, chroot, socket and helper paths: each instance gets
        its own in a private mount namespace (``unshare``), so workers do not share them."""
        ports = {"MX": free_port(), "HARD": free_port(), "TLS": free_port()}
        install_cert(cert, self.root)
        nobody = pwd.getpwnam("nobody")
        for sub, mode in (("spool", 0o711), ("empty", 0o755), ("run", 0o755), ("mail", 0o755)):
            (self.root / sub).mkdir(exist_ok=True)
            os.chmod(self.root / sub, mode)
        shutil.chown(self.root / "mail", nobody.pw_uid, nobody.pw_gid)
        (self.root / "aliases").write_text("postmaster: alice\nroot: alice\n")
        (self.root / "userbase").write_text(f"{USER} {nobody.pw_uid}:{nobody.pw_gid}:{self.root / 'mail'}\n")
        conf = self.root / "smtpd.conf"
        conf.write_text(fill("smtpd.conf", {"MTA": self.root, "ROOT": SMTPD_ROOT, **ports}))
        self.listeners = {
            "default": Listener("opensmtpd", "default", "127.0.0.1", ports["MX"], "none"),
            "hardened": Listener("opensmtpd", "hardened", "127.0.0.1", ports["HARD"], "none"),
            "broken-tls": Listener("opensmtpd", "broken-tls", "127.0.0.1", ports["TLS"], "starttls"),
        }
        binds = [(self.root / "spool", "/var/spool/smtpd"), (self.root / "empty", "/var/lib/opensmtpd/empty"),
                 (self.root / "run", "/run"),
                 # its mda wrapper runs helpers from here ("mail.mda: not found" otherwise)
                 (SMTPD_ROOT / "usr" / "libexec" / "opensmtpd", "/usr/libexec/opensmtpd")]
        for _, target in binds:
            os.makedirs(target, exist_ok=True)  # mount points (empty) on the host
        script = " && ".join(f"mount --bind {src} {dst}" for src, dst in binds)
        log = open(self.root / "smtpd-log", "ab")  # noqa: SIM115 - closed with the process
        self.procs.append(subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             f"{script} && exec {SMTPD} -d -f {conf}"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL))
        log.close()
        if not wait_greeting("127.0.0.1", ports["MX"], time.monotonic() + START_TIMEOUT, self.procs[0]):
            log = self.log()
            self.stop()
            raise RuntimeError(f"opensmtpd did not start: {log}")
        return self


def opensmtpd_available() -> str | None:
    if os.geteuid() != 0:
        return "starting OpenSMTPD needs root"
    if not SMTPD.exists():
        return f"OpenSMTPD is not unpacked at {SMTPD} (see .ci/run)"
    if not shutil.which("unshare"):
        return "unshare (util-linux) is missing"
    for user in ("opensmtpd", "opensmtpq"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"no {user} user on this machine (see .ci/run)"
    return None


# ---- fixtures --------------------------------------------------------------------------------


def _start_with_retries(start, attempts: int = 3):
    """Ports come from binding port 0 and are released before the server binds them: another
    worker may take one in between, so a failed start is retried with new ports."""
    for attempt in range(attempts):
        try:
            return start()
        except RuntimeError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def lab_cert(tls_certs: TlsCerts) -> CertFiles:
    """The lab servers' certificate: their name and their loopback addresses."""
    return tls_certs.issue("mta-lab", "mx.mta.test", "127.0.0.1", "127.0.0.2", "localhost")


@pytest.fixture(scope="session")
def exim_lab(lab_cert: CertFiles) -> Iterator[EximLab]:
    reason = exim_available()
    if reason:
        interop_unavailable(reason)
    server = _start_with_retries(lambda: EximLab(instance_dir("exim")).start(lab_cert))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postfix_dovecot_lab(lab_cert: CertFiles) -> Iterator[PostfixDovecot]:
    reason = dovecot_available()
    if reason:
        interop_unavailable(reason)

    def start() -> PostfixDovecot:
        pf_root = instance_dir("pfsasl")
        relay = free_port()
        dovecot = DovecotLab(instance_dir("dovecot")).start(lab_cert, relay)
        try:
            pf = PostfixSasl(root=pf_root, port=relay, tls=lab_cert,
                             sasl_path=str(dovecot.auth_socket)).start()
        except RuntimeError:
            dovecot.stop()
            shutil.rmtree(pf_root, ignore_errors=True)
            raise
        return PostfixDovecot(pf, dovecot)

    lab = _start_with_retries(start)
    yield lab
    lab.stop()


@pytest.fixture(scope="session")
def opensmtpd_lab(lab_cert: CertFiles) -> Iterator[OpenSmtpdLab]:
    reason = opensmtpd_available()
    if reason:
        interop_unavailable(reason)
    server = _start_with_retries(lambda: OpenSmtpdLab(instance_dir("smtpd")).start(lab_cert))
    yield server
    server.stop()
