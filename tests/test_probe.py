"""``smtpcli probe`` against real loopback servers: aiosmtpd, the scripted peer, the DNS fixture
and a local HTTPS server for MTA-STS."""

from __future__ import annotations

import json
import ssl
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smtpcli.cli.main import main
from smtpcli.probe.dane import make_tlsa
from tests.servers.certs import CertFiles, TlsCerts
from tests.servers.probe_servers import free_port, start_https, start_on
from tests.servers.scripted_peer import Close, Expect, Send, Sleep, StartTLS

ZONES = Path(__file__).parent / "zones"


_DEFAULT_NS: list[str] = []


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    """Run the CLI in process with --json; return (exit code, JSON document, stderr).

    Without an explicit --nameserver the test's DNS fixture is used (the system resolver is
    never asked, not even for reverse DNS of 127.0.0.1)."""
    if "--nameserver" not in args:
        assert _DEFAULT_NS, "test needs the ns fixture"
        args = [*args, "--nameserver", _DEFAULT_NS[-1]]
    with pytest.raises(SystemExit) as exc:
        main(["probe", *args, "--json"])
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), json.loads(out), err


@pytest.fixture(autouse=True)
def ns(dns_server) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """The loopback DNS fixture with the probe zones, the default --nameserver of ``run``."""
    server = dns_server(zone_files=["probe-multi.zone", "probe-ptr.zone"])
    _DEFAULT_NS.append(server.nameserver)
    yield server
    _DEFAULT_NS.remove(server.nameserver)


def ids(doc: dict[str, Any], status: str | None = None) -> set[str]:
    return {f["id"] for f in doc["findings"] if status is None or f["status"] == status}


@pytest.fixture
def servers() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for s in started:
        s.stop()


# ---- single host --------------------------------------------------------------------------------


def test_starttls_valid_certificate(smtp_server, tls_certs: TlsCerts, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("starttls", users={"u": "p"})
    pem = tmp_path / "chain.pem"
    junit = tmp_path / "probe.xml"
    code, doc, _ = run([f"127.0.0.1:{server.port}", "--cafile", str(tls_certs.ca_path),
                        "--save-cert", str(pem), "--junit", str(junit)], capsys)
    assert {"tls.ok", "tls.cert-ok", "auth.offered"} <= ids(doc)
    assert not ids(doc) & {"tls.not-offered", "auth.before-tls", "tls.cert-untrusted"}
    host = doc["facts"]["hosts"][0]
    assert host["tls"]["verified"] is True and host["tls"]["hostname_match"] is True
    assert "STARTTLS" in host["ehlo_before_tls"] and "STARTTLS" not in host["ehlo_after_tls"]
    assert host["auth_before_tls"] == [] and "PLAIN" in host["auth_after_tls"]
    assert host["extensions"]["smtputf8"] is True
    assert host["connect_ms"] is not None and host["banner_delay_ms"] is not None
    versions = {v["version"]: v["state"] for v in host["tls_versions"]}
    assert versions["1.2"] == "accepted" and versions["1.3"] == "accepted"
    assert versions["1.0"] in ("refused", "untested")  # the fixture's OpenSSL context is modern
    assert "tls.old-version" not in ids(doc)
    assert pem.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert server.messages == []  # a probe never sends mail
    assert "<testsuite" in junit.read_text()
    assert "dns.ptr-ok" in ids(doc)  # 127.0.0.1 -> mx1.probe.test -> 127.0.0.1 on the fixture
    assert code == 0


def test_plain_server_without_starttls_fails(smtp_server, capsys) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("plain")
    code, doc, _ = run([f"127.0.0.1:{server.port}", "--no-tls-versions"], capsys)
    assert "tls.not-offered" in ids(doc, "fail")
    assert code in (1, 3)


def test_auth_offered_in_plaintext(smtp_server, capsys) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("plain", users={"u": "p"}, auth_require_tls=False)
    _, doc, _ = run([f"127.0.0.1:{server.port}", "--no-tls-versions"], capsys)
    finding = next(f for f in doc["findings"] if f["id"] == "auth.before-tls")
    assert finding["status"] == "fail" and "PLAIN" in finding["summary"]


@pytest.mark.parametrize(("cert", "expected", "status"), [
    ("expired", "tls.cert-expired", "fail"),
    ("self_signed", "tls.cert-untrusted", "warn"),
    ("wrong_host", "tls.cert-name-mismatch", "warn"),
])
def test_certificate_problems(smtp_server, tls_certs: TlsCerts, capsys, cert: str,  # type: ignore[no-untyped-def]
                              expected: str, status: str) -> None:
    server = smtp_server("starttls", cert=getattr(tls_certs, cert))
    args = [f"127.0.0.1:{server.port}", "--cafile", str(tls_certs.ca_path), "--no-tls-versions"]
    code, doc, _ = run(args, capsys)
    assert expected in ids(doc, status)
    assert "tls.cert-ok" not in ids(doc)
    # port 25 TLS is opportunistic: a certificate senders do not check is a warning, which
    # --strict turns into exit 1; an expired one fails outright
    assert code == (1 if status == "fail" else 0)
    code, _, _ = run([*args, "--strict"], capsys)
    assert code == 1


def test_cert_days_threshold(smtp_server, tls_certs: TlsCerts, capsys) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    soon = tls_certs.issue("soon", "127.0.0.1",
                           not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=5))
    server = smtp_server("starttls", cert=soon)
    args = [f"127.0.0.1:{server.port}", "--cafile", str(tls_certs.ca_path), "--no-tls-versions"]
    _, doc, _ = run(args, capsys)
    assert "tls.cert-expiring" in ids(doc, "warn")
    _, doc, _ = run([*args, "--cert-days", "2"], capsys)
    assert "tls.cert-expiring" not in ids(doc)


def test_expect_capability(smtp_server, capsys) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("plain")
    _, doc, _ = run([f"127.0.0.1:{server.port}", "--no-tls-versions",
                     "--expect-capability", "smtputf8", "--expect-capability", "CHUNKING"], capsys)
    missing = [f["summary"] for f in doc["findings"] if f["id"] == "smtp.capability-missing"]
    assert len(missing) == 1 and "CHUNKING" in missing[0]


def _starttls_script(ctx: ssl.SSLContext) -> list[Any]:
    return [
        Send(b"220 peer.probe.test ESMTP\r\n"), Expect(b"EHLO"),
        Send(b"250-peer.probe.test\r\n250 STARTTLS\r\n"), Expect(b"STARTTLS"),
        Send(b"220 go ahead\r\n"), StartTLS(ctx), Expect(b"EHLO"),
        Send(b"250 peer.probe.test\r\n"), Expect(), Send(b"502 no\r\n"), Expect(),
        Send(b"502 no\r\n"), Expect(b"QUIT"), Send(b"221 bye\r\n"),
    ]


def test_starttls_failing_in_the_handshake(scripted_peer, capsys) -> None:  # type: ignore[no-untyped-def]
    peer = scripted_peer([
        Send(b"220 peer.probe.test ESMTP\r\n"), Expect(b"EHLO"),
        Send(b"250-peer.probe.test\r\n250 STARTTLS\r\n"), Expect(b"STARTTLS"),
        Send(b"220 go ahead\r\n"), Send(b"this is not TLS\r\n"), Close(),
    ])
    code, doc, _ = run([f"127.0.0.1:{peer.port}", "--no-tls-versions", "--timeout", "3"], capsys)
    assert "tls.handshake-failed" in ids(doc, "fail")
    assert code in (1, 3)


def test_tarpit_banner_respects_timeout(scripted_peer, capsys) -> None:  # type: ignore[no-untyped-def]
    peer = scripted_peer([Sleep(20), Send(b"220 late\r\n")])
    began = time.monotonic()
    code, doc, _ = run([f"127.0.0.1:{peer.port}", "--timeout", "0.3", "--no-tls-versions"], capsys)
    assert time.monotonic() - began < 10  # bounded by --timeout, not by the 20 s tarpit
    assert "smtp.timeout" in ids(doc, "error")
    assert code == 3


def test_server_dropping_after_ehlo(scripted_peer, capsys) -> None:  # type: ignore[no-untyped-def]
    peer = scripted_peer([Send(b"220 peer ESMTP\r\n"), Expect(b"EHLO"), Close()])
    code, doc, _ = run([f"127.0.0.1:{peer.port}", "--no-tls-versions", "--timeout", "3"], capsys)
    dropped = [f for f in doc["findings"] if f["id"] == "smtp.dropped"]
    assert dropped and "ehlo" in dropped[0]["summary"]
    assert code == 3


def test_connect_refused(scripted_peer, capsys) -> None:  # type: ignore[no-untyped-def]
    peer = scripted_peer([Close()])
    port = peer.port
    peer.stop()
    code, doc, _ = run([f"127.0.0.1:{port}", "--no-tls-versions"], capsys)
    assert "connect.failed" in ids(doc, "error") and code == 3


def test_old_tls_versions_reported(scripted_peer, tls_certs: TlsCerts, capsys) -> None:  # type: ignore[no-untyped-def]
    ctx = tls_certs.valid.server_context()
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    peer = scripted_peer(_starttls_script(ctx))
    _, doc, _ = run([f"127.0.0.1:{peer.port}", "--cafile", str(tls_certs.ca_path),
                     "--timeout", "3", "--no-vrfy"], capsys)
    versions = {v["version"]: v for v in doc["facts"]["hosts"][0]["tls_versions"]}
    if versions["1.0"]["state"] == "untested":
        assert "local OpenSSL" in versions["1.0"]["detail"]  # said honestly, not "refused"
    else:
        assert versions["1.0"]["state"] == "accepted"
        assert "tls.old-version" in ids(doc, "warn")


# ---- a domain: every MX, every address, DANE, MTA-STS -------------------------------------------


@pytest.fixture
def probe_certs(tls_certs: TlsCerts) -> CertFiles:
    return tls_certs.issue("probe-mx", "mx1.probe.test", "mx2.probe.test")


def _domain_servers(servers: list[Any], cert: CertFiles) -> int:
    hosts = ("127.0.0.1", "127.0.0.2", "::1")
    port = free_port(hosts)
    for host in hosts:
        servers.append(start_on(host, port, cert=cert, hostname="mx1.probe.test"))
    return port


def test_domain_every_mx_and_address(dns_server, servers, probe_certs: CertFiles,  # type: ignore[no-untyped-def]
                                     tls_certs: TlsCerts, capsys) -> None:
    port = _domain_servers(servers, probe_certs)
    dns = dns_server(zone_files=["probe-multi.zone", "probe-ptr.zone"])
    code, doc, _ = run(["probe.test", "--port", str(port), "--nameserver", dns.nameserver,
                        "--cafile", str(tls_certs.ca_path), "--no-tls-versions"], capsys)
    hosts = doc["facts"]["hosts"]
    seen = sorted((h["host"], h["address"]) for h in hosts)
    assert seen == [("mx1.probe.test", "127.0.0.1"), ("mx1.probe.test", "::1"),
                    ("mx2.probe.test", "127.0.0.2"), ("mx2.probe.test", "::1")]
    assert all(h["tls"]["verified"] and h["tls"]["hostname_match"] for h in hosts)
    by_addr = {f["subject"]: f["id"] for f in doc["findings"] if f["id"].startswith("dns.ptr")}
    assert by_addr["mx1.probe.test 127.0.0.1:" + str(port)] == "dns.ptr-ok"
    assert by_addr["mx2.probe.test 127.0.0.2:" + str(port)] == "dns.ptr-mismatch"
    # ::1 has no reverse zone on the fixture: REFUSED is a failed lookup, never "missing"
    assert by_addr[f"mx1.probe.test [::1]:{port}"] == "dns.ptr-failed"
    assert "dane.none" in ids(doc)
    # every question went to the fixture, none to the system resolver
    asked = {q.qname for q in dns.queries}
    # TLSA at the probed port (RFC 6698 3; with the default --port 25 that is _25._tcp)
    assert "mx1.probe.test." in asked and f"_{port}._tcp.mx1.probe.test." in asked
    assert code == 3  # the failed reverse lookup of ::1 is an error, as DESIGN demands

    code, doc, _ = run(["probe.test", "--port", str(port), "--nameserver", dns.nameserver,
                        "--cafile", str(tls_certs.ca_path), "--no-tls-versions", "--first-only"],
                       capsys)
    assert [(h["host"], h["address"]) for h in doc["facts"]["hosts"]] == [
        ("mx1.probe.test", "127.0.0.1")]


def _tlsa_zone(cert: CertFiles, good: bool) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    leaf = x509.load_pem_x509_certificates(cert.cert_path.read_bytes())[0]
    der = leaf.public_bytes(serialization.Encoding.DER)
    # A mismatch: the right selector/type over a certificate that differs in its last byte.
    record = make_tlsa(der, 3, 1, 1) if good else make_tlsa(der[:-1] + bytes([der[-1] ^ 1]), 3, 0, 1)
    return (f"$ORIGIN dane.test.\n@ MX 10 mx1.dane.test.\nmx1 A 127.0.0.1\n"
            f"_{{port}}._tcp.mx1 TLSA {record.to_text()}\n")


@pytest.mark.parametrize("good", [True, False])
def test_dane_match_and_mismatch(dns_server, servers, tls_certs: TlsCerts, capsys,  # type: ignore[no-untyped-def]
                                 good: bool) -> None:
    cert = tls_certs.issue(f"dane-{good}", "mx1.dane.test")
    port = free_port(("127.0.0.1",))
    servers.append(start_on("127.0.0.1", port, cert=cert))
    dns = dns_server(zones={"dane.test.": _tlsa_zone(cert, good).replace("{port}", str(port))},
                     ad=["dane.test."])
    code, doc, _ = run(["dane.test", "--port", str(port), "--nameserver", dns.nameserver,
                        "--no-tls-versions"], capsys)
    tlsa = doc["facts"]["tlsa"]["mx1.dane.test"]
    assert tlsa["authenticated"] is True and len(tlsa["records"]) == 1
    if good:
        assert "dane.match" in ids(doc, "ok")
        # trust comes from DANE-EE: no CA needed (no --cafile given), so untrusted is only info
        untrusted = [f for f in doc["findings"] if f["id"] == "tls.cert-untrusted"]
        assert untrusted and untrusted[0]["status"] == "info"
    else:
        assert "dane.mismatch" in ids(doc, "fail"), doc["findings"]
        assert code in (1, 3)


def test_dane_without_dnssec_is_not_trusted(dns_server, servers, tls_certs: TlsCerts, capsys) -> None:  # type: ignore[no-untyped-def]
    cert = tls_certs.issue("dane-unsigned", "mx1.dane.test")
    port = free_port(("127.0.0.1",))
    servers.append(start_on("127.0.0.1", port, cert=cert))
    dns = dns_server(zones={"dane.test.": _tlsa_zone(cert, True).replace("{port}", str(port))})
    _, doc, _ = run(["dane.test", "--port", str(port), "--nameserver", dns.nameserver,
                     "--no-tls-versions"], capsys)
    assert "dane.unsigned" in ids(doc, "warn")
    assert next(f for f in doc["findings"] if f["id"] == "tls.cert-untrusted")["status"] == "warn"


def test_mta_sts_policy_and_mx_coverage(dns_server, servers, probe_certs: CertFiles,  # type: ignore[no-untyped-def]
                                        tls_certs: TlsCerts, capsys) -> None:
    port = _domain_servers(servers, probe_certs)
    web_cert = tls_certs.issue("mta-sts", "mta-sts.probe.test")
    policy = "version: STSv1\r\nmode: enforce\r\nmx: mx1.probe.test\r\nmax_age: 86400\r\n"
    https = start_https(web_cert, {"/.well-known/mta-sts.txt": policy})
    servers.append(https)
    dns = dns_server(zone_files=["probe-multi.zone", "probe-ptr.zone"])
    code, doc, _ = run(["probe.test", "--port", str(port), "--nameserver", dns.nameserver,
                        "--cafile", str(tls_certs.ca_path), "--no-tls-versions",
                        "--mta-sts-port", str(https.port)], capsys)
    assert https.requests == ["mta-sts.probe.test/.well-known/mta-sts.txt"]
    mta = doc["facts"]["mta_sts"]
    assert mta["state"] == "policy" and mta["policy"]["mode"] == "enforce"
    not_covered = [f for f in doc["findings"] if f["id"] == "mta-sts.mx-not-covered"]
    assert [f["subject"] for f in not_covered] == ["mx2.probe.test"]
    assert not_covered[0]["status"] == "fail"
    assert "mta-sts.cert-invalid" not in ids(doc)  # every MX presents a valid certificate
    assert code in (1, 3)


def test_mta_sts_unreachable_policy(dns_server, servers, probe_certs: CertFiles,  # type: ignore[no-untyped-def]
                                    tls_certs: TlsCerts, capsys) -> None:
    port = _domain_servers(servers, probe_certs)
    dns = dns_server(zone_files=["probe-multi.zone", "probe-ptr.zone"])
    closed = free_port(("127.0.0.1",))
    _, doc, _ = run(["probe.test", "--port", str(port), "--nameserver", dns.nameserver,
                     "--no-tls-versions", "--timeout", "3", "--mta-sts-port", str(closed)],
                    capsys)
    assert "mta-sts.policy-unreachable" in ids(doc, "fail")


def test_domain_dns_failure_is_an_error_not_absent(dns_server, capsys) -> None:  # type: ignore[no-untyped-def]
    dns = dns_server(zone_files=["probe-multi.zone"])
    dns.behaviour[("probe.test.", "MX")] = "servfail"
    code, doc, _ = run(["probe.test", "--nameserver", dns.nameserver, "--timeout", "2"], capsys)
    assert "dns.mx-failed" in ids(doc, "error")
    assert code == 3


def test_text_output_and_usage_error(smtp_server, capsys) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("plain")
    with pytest.raises(SystemExit) as exc:
        main(["probe", f"127.0.0.1:{server.port}", "--no-tls-versions",
              "--nameserver", _DEFAULT_NS[-1]])
    out, _ = capsys.readouterr()
    assert "tls.not-offered" in out and f"127.0.0.1:{server.port}" in out
    with pytest.raises(SystemExit) as exc:
        main(["probe", "127.0.0.1:notaport"])
    _, err = capsys.readouterr()
    assert exc.value.code == 2 and "invalid port" in err


def test_implicit_tls_url(smtp_server, tls_certs: TlsCerts, capsys) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server("implicit", users={"u": "p"})
    code, doc, _ = run([f"smtps://127.0.0.1:{server.port}", "--cafile", str(tls_certs.ca_path),
                        "--no-tls-versions"], capsys)
    host = doc["facts"]["hosts"][0]
    assert host["tls_mode"] == "implicit" and host["tls"]["verified"] is True
    assert "ehlo_before_tls" not in host and "AUTH" in host["ehlo_after_tls"]
    assert "tls.not-offered" not in ids(doc) and "auth.before-tls" not in ids(doc)
    assert code == 0


def test_vrfy_and_expn_enabled(scripted_peer, capsys) -> None:  # type: ignore[no-untyped-def]
    peer = scripted_peer([
        Send(b"220 peer ESMTP\r\n"), Expect(b"EHLO"), Send(b"250 peer\r\n"),
        Expect(b"VRFY"), Send(b"250 2.1.5 Postmaster <postmaster@peer>\r\n"),
        Expect(b"EXPN"), Send(b"250 2.1.5 <root@peer>\r\n"), Expect(b"QUIT"),
        Send(b"221 bye\r\n"),
    ])
    _, doc, _ = run([f"127.0.0.1:{peer.port}", "--no-tls-versions", "--timeout", "3"], capsys)
    assert {"smtp.vrfy-enabled", "smtp.expn-enabled"} <= ids(doc, "warn")
    assert doc["facts"]["hosts"][0]["vrfy"]["code"] == 250


def test_shared_context_built_once_and_failures_not_kept() -> None:
    """The run's shared TLS contexts (tlsversions.Once): one build however many threads ask at
    once; a build that raises is not kept, so the next asker meets the same error."""
    import threading

    from smtpcli.probe.tlsversions import Once

    builds: list[int] = []
    start = threading.Barrier(8)

    def build() -> object:
        builds.append(1)
        time.sleep(0.05)
        return object()

    once = Once(build)
    got: list[object] = []

    def ask() -> None:
        start.wait()
        got.append(once.get())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len(got) == 8 and all(g is got[0] for g in got)

    def broken() -> object:
        raise ssl.SSLError("bad CA file")

    failing = Once(broken)
    for _ in range(2):
        with pytest.raises(ssl.SSLError):
            failing.get()


def test_verify_context_failure_is_raised_not_a_verdict(smtp_server) -> None:  # type: ignore[no-untyped-def]
    """The verifying context is built only once STARTTLS is accepted; if building it fails, that
    is an error of ours, raised as before, not the server's chain 'refused'."""
    from smtpcli.probe.tlsversions import Once, verify_handshake
    from smtpcli.smtp.connection import ConnectOptions
    from smtpcli.smtp.target import Target, TlsMode

    server = smtp_server("starttls")

    def broken() -> ssl.SSLContext:
        raise ssl.SSLError("cannot load the trust store")

    target = Target("127.0.0.1", server.port, TlsMode.NONE, ("127.0.0.1",))
    with pytest.raises(ssl.SSLError, match="trust store"):
        verify_handshake(target, ConnectOptions(timeout=5), None, None, Once(broken))
