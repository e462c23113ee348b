"""Security probes (smtpcli.security) against servers configured vulnerable and not:
the scripted raw peer, a sloppy legacy MTA, smtpcli's own capture server (aiosmtpd) and a real
Postfix with smtpd_forbid_bare_newline off and on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from smtpcli.errors import UsageError
from smtpcli.results import Status
from smtpcli.security import FINDING_IDS, SecurityOptions, parse_checks, run_checks
from smtpcli.security.openrelay import relay_forms
from smtpcli.security.smuggling import SEQUENCES, maildir_counter
from smtpcli.server.config import ServeConfig
from smtpcli.server.runner import ThreadedServer, free_port, run_in_thread
from smtpcli.smtp.target import parse_target
from tests.servers.hostile_legacy_mta import legacy_mta  # noqa: F401  (fixture)
from tests.servers.postfix import postfix, postfix_pool  # noqa: F401  (fixtures)
from tests.servers.scripted_peer import Expect, Send, Sleep, StartTLS

FAST = SecurityOptions(timeout=5, reply_wait=0.3)
BANNER = Send(b"220 peer.test ESMTP\r\n")
N_FORMS = len(relay_forms("x", "y", "127.0.0.1"))


def by_id(findings):
    return {f.id: f for f in findings}


def target(port: int):
    return parse_target(f"127.0.0.1:{port}")


@pytest.fixture
def serve(tls_certs) -> Iterator:
    """Factory for smtpcli's capture server (the library behind `smtpcli serve`) in a thread."""
    servers: list[ThreadedServer] = []

    def factory(**kw) -> ThreadedServer:
        config = ServeConfig(port=0, memory=True, fsync=False,  # port 0: no race for a port
                             tls_cert=str(tls_certs.valid.cert_path),
                             tls_key=str(tls_certs.valid.key_path), **kw)
        server = run_in_thread(config)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


# ---- check selection --------------------------------------------------------------------

def test_parse_checks() -> None:
    assert parse_checks("all") == ["relay", "enum", "auth-plain", "starttls-injection", "smuggling"]
    assert parse_checks("smuggling, relay") == ["relay", "smuggling"]
    with pytest.raises(UsageError, match="unknown check bogus"):
        parse_checks("relay,bogus")
    assert len(set(FINDING_IDS)) == 7


def test_unreachable_server_gives_error_findings_not_exceptions() -> None:
    findings = run_checks(target(free_port()), "all", FAST)
    assert {f.id for f in findings} == set(FINDING_IDS)
    assert all(f.status is Status.ERROR and "cannot connect" in f.summary for f in findings)


def test_silent_server_is_bounded_by_the_timeout(scripted_peer) -> None:
    peer = scripted_peer([Sleep(30)])
    [finding] = run_checks(target(peer.port), "relay", SecurityOptions(timeout=0.3))
    assert finding.status is Status.ERROR and "no reply" in finding.summary


# ---- open relay -------------------------------------------------------------------------

def _relay_script(rcpt_reply: bytes) -> list:
    steps = [BANNER, Expect(b"EHLO"), Send(b"250-relay.test\r\n250 8BITMIME\r\n")]
    for _ in range(N_FORMS):
        steps += [Expect(b"MAIL"), Send(b"250 2.1.0 Ok\r\n"), Expect(b"RCPT"), Send(rcpt_reply),
                  Expect(b"RSET"), Send(b"250 2.0.0 Ok\r\n")]
    return steps + [Expect(b"QUIT"), Send(b"221 bye\r\n")]


def test_open_relay_detected_and_no_message_sent(scripted_peer) -> None:
    peer = scripted_peer(_relay_script(b"250 2.1.5 Ok\r\n"))
    [f] = run_checks(target(peer.port), "relay", FAST)
    assert f.id == "security.open-relay" and f.status is Status.FAIL
    assert f.data["tried"] == N_FORMS == 16 and len(f.data["accepted"]) == 16
    rcpts = [line for line in peer.received if line.startswith(b"RCPT")]
    # The classic forms, with the server's EHLO name and address literal filled in.
    assert b"RCPT TO:<relaytest%example.net@[127.0.0.1]>\r\n" in rcpts
    assert b"RCPT TO:<@relay.test:relaytest@example.net>\r\n" in rcpts
    assert b"RCPT TO:<example.net!relaytest>\r\n" in rcpts
    assert b'RCPT TO:<"relaytest@example.net">\r\n' in rcpts
    assert sum(line == b"RSET\r\n" for line in peer.received) == 16
    assert not any(line.startswith(b"DATA") for line in peer.received)
    assert peer.errors == []


def test_relay_refused_is_ok(scripted_peer) -> None:
    peer = scripted_peer(_relay_script(b"554 5.7.1 Relay access denied\r\n"))
    [f] = run_checks(target(peer.port), "relay", FAST)
    assert f.status is Status.OK and f.data["tried"] == 16 and not f.data["accepted"]


def test_relay_needing_auth_stops_early(scripted_peer) -> None:
    peer = scripted_peer([BANNER, Expect(b"EHLO"), Send(b"250 relay.test\r\n"), Expect(b"MAIL"),
                          Send(b"530 5.7.0 Authentication required\r\n"), Expect(b"RSET"),
                          Send(b"250 Ok\r\n"), Expect(b"QUIT"), Send(b"221 bye\r\n")])
    [f] = run_checks(target(peer.port), "relay", FAST)
    assert f.status is Status.OK and f.data["tried"] == 1


# ---- user enumeration -------------------------------------------------------------------

def _enum_script(index: int) -> list:
    head = [BANNER, Expect(b"EHLO"), Send(b"250-enum.test\r\n250 8BITMIME\r\n")]
    tail = [Expect(b"QUIT"), Send(b"221 bye\r\n")]
    if index == 0:
        body = [Expect(b"VRFY postmaster@enum.test"), Send(b"250 2.1.5 <postmaster@enum.test>\r\n"),
                Expect(b"VRFY root@"), Send(b"250 2.1.5 <root@enum.test>\r\n"),
                Expect(b"VRFY admin@"), Send(b"550 5.1.1 unknown\r\n"),
                Expect(b"VRFY smtpcli-"), Send(b"550 5.1.1 unknown\r\n")]
    elif index == 1:
        body = [Expect(b"EXPN postmaster"), Send(b"250-<a@enum.test>\r\n250 <b@enum.test>\r\n"),
                Expect(b"EXPN root"), Send(b"550 5.1.1 no such list\r\n"),
                Expect(b"EXPN admin"), Send(b"550 5.1.1 no such list\r\n"),
                Expect(b"EXPN smtpcli-"), Send(b"550 5.1.1 no such list\r\n")]
    else:
        body = [Expect(b"MAIL FROM:<>"), Send(b"250 Ok\r\n"),
                Expect(b"RCPT TO:<postmaster@enum.test>"), Send(b"250 Ok\r\n"),
                Expect(b"RCPT TO:<root@enum.test>"), Send(b"550 5.1.1 User unknown\r\n"),
                Expect(b"RCPT TO:<admin@enum.test>"), Send(b"550 5.1.1 User unknown\r\n"),
                Expect(b"RCPT TO:<smtpcli-"), Send(b"550 5.1.1 User unknown\r\n"),
                Expect(b"RSET"), Send(b"250 Ok\r\n")]
    return head + body + tail


def test_user_enumeration_detected(scripted_peer) -> None:
    peer = scripted_peer(_enum_script)
    opts = SecurityOptions(timeout=5, reply_wait=0.3, user_domain="enum.test")
    found = by_id(run_checks(target(peer.port), "enum", opts))
    vrfy, expn, rcpt = (found["security.vrfy-enum"], found["security.expn-enabled"],
                        found["security.rcpt-enum"])
    assert vrfy.status is Status.WARN and "postmaster@enum.test gets 250, root@enum.test gets 250" in vrfy.summary
    assert expn.status is Status.WARN and "postmaster@enum.test" in expn.summary
    assert rcpt.status is Status.INFO and "550" in rcpt.summary
    assert peer.errors == []


def test_user_enumeration_not_possible_on_serve(serve) -> None:
    server = serve()
    found = by_id(run_checks(target(server.port), "enum", FAST))
    assert [found[i].status for i in ("security.vrfy-enum", "security.expn-enabled",
                                      "security.rcpt-enum")] == [Status.OK] * 3
    assert "252" in found["security.vrfy-enum"].summary


# ---- AUTH before TLS ----------------------------------------------------------------------

def test_auth_accepted_before_tls_without_sending_credentials(scripted_peer) -> None:
    peer = scripted_peer([
        BANNER, Expect(b"EHLO"), Send(b"250-auth.test\r\n250 AUTH PLAIN LOGIN\r\n"),
        Expect(b"AUTH PLAIN"), Send(b"334 \r\n"), Expect(b"*"),
        Send(b"501 5.7.0 Authentication cancelled\r\n"),
        Expect(b"AUTH LOGIN"), Send(b"334 VXNlcm5hbWU6\r\n"), Expect(b"*"),
        Send(b"501 5.7.0 Authentication cancelled\r\n"), Expect(b"QUIT"), Send(b"221 bye\r\n"),
    ])
    [f] = run_checks(target(peer.port), "auth-plain", FAST)
    assert f.id == "security.auth-before-tls" and f.status is Status.FAIL
    assert f.data["mechanisms"] == ["PLAIN", "LOGIN"] and f.data["accepted"] == ["PLAIN", "LOGIN"]
    # Exactly each command without an initial response, then the cancel: no credential.
    assert peer.received[1:6] == [b"AUTH PLAIN\r\n", b"*\r\n", b"AUTH LOGIN\r\n", b"*\r\n",
                                  b"QUIT\r\n"]


def test_auth_before_tls_on_serve_configured_both_ways(serve) -> None:
    users = {"alice": "s3cret"}
    [safe] = run_checks(target(serve(auth_users=users).port), "auth-plain", FAST)
    assert safe.status is Status.OK and not safe.data["offered_before_tls"]
    [unsafe] = run_checks(target(serve(auth_users=users, auth_plaintext=True).port),
                          "auth-plain", FAST)
    assert unsafe.status is Status.FAIL and unsafe.data["offered_before_tls"]


# ---- STARTTLS injection ---------------------------------------------------------------------

def test_starttls_injection_detected(scripted_peer, tls_certs) -> None:
    # asyncio keeps the plaintext read buffer across start_tls: the pipelined RSET is then read
    # as if it came over TLS, which is exactly CVE-2011-0411.
    peer = scripted_peer([
        BANNER, Expect(b"EHLO"), Send(b"250-inj.test\r\n250 STARTTLS\r\n"),
        Expect(b"STARTTLS"), Send(b"220 2.0.0 Ready\r\n"),
        StartTLS(tls_certs.valid.server_context()),
        Expect(b"RSET"), Send(b"250 2.0.0 Ok\r\n"),
        Expect(b"EHLO"), Send(b"250-inj.test\r\n250 8BITMIME\r\n"),
        Expect(b"QUIT"), Send(b"221 bye\r\n"),
    ])
    [f] = run_checks(target(peer.port), "starttls-injection", FAST)
    assert f.id == "security.starttls-injection" and f.status is Status.FAIL
    assert f.data["replies_after_handshake"][0]["code"] == 250
    assert peer.errors == []


def test_starttls_injection_not_on_serve(serve) -> None:
    [f] = run_checks(target(serve().port), "starttls-injection", FAST)
    assert f.status is Status.OK and f.data["verdict"] == "not-vulnerable"


def test_starttls_injection_not_applicable_without_starttls(scripted_peer) -> None:
    peer = scripted_peer([BANNER, Expect(b"EHLO"), Send(b"250 plain.test\r\n"),
                          Expect(b"QUIT"), Send(b"221 bye\r\n")])
    [f] = run_checks(target(peer.port), "starttls-injection", FAST)
    assert f.status is Status.OK and "not offered" in f.summary


# ---- SMTP smuggling -----------------------------------------------------------------------

def _verdicts(finding) -> dict[str, str]:
    return {s["name"]: s["verdict"] for s in finding.data["sequences"]}


def test_smuggling_detected_and_confirmed_on_a_sloppy_mta(legacy_mta) -> None:  # noqa: F811
    mta = legacy_mta(extra_terminators=(b"\n.\r\n",))

    def stored(tag: str) -> int:
        return sum(tag.encode() in m for m in list(mta.messages))

    # reply_wait: the wait each sequence kept as content costs (twice); the sloppy MTA answers
    # the ones that end DATA within milliseconds, so 0.2 s leaves a margin under parallel load.
    opts = SecurityOptions(timeout=5, reply_wait=0.2, smuggling_rcpt="victim@legacy.test")
    [f] = run_checks(target(mta.port), "smuggling", opts)
    assert f.status is Status.FAIL and f.summary.endswith("\\n.\\r\\n")
    verdicts = _verdicts(f)
    assert verdicts.pop("lf.crlf") == "end-of-data"
    assert set(verdicts.values()) == {"data"}
    by_name = {s["name"]: s for s in f.data["sequences"]}
    assert by_name["lf.crlf"]["smuggled_mail_reply"].startswith("250")
    # End to end: the whole smuggled transaction stores two messages where the sequence
    # ends DATA, one where it is content.
    confirm = SecurityOptions(timeout=5, reply_wait=0.2, smuggling_rcpt="victim@legacy.test",
                              smuggling_sequences=("lf.crlf", "lf.lf", "cr.cr"), confirm=stored)
    [c] = run_checks(target(mta.port), "smuggling", confirm)
    assert [(s["name"], s["stored"], s["confirmed"]) for s in c.data["sequences"]] == [
        ("lf.crlf", 2, True), ("lf.lf", 1, False), ("cr.cr", 1, False)]
    # Byte-exact: a sequence kept as content is in the stored message exactly as sent.
    assert any(b"follows.\r.\rMAIL FROM:<smtpcli-probe@example.net>\r\n" in m
               for m in mta.messages)
    assert any(b"follows.\r\n\x00.\r\nMAIL FROM:<" in m for m in mta.messages)


def test_no_smuggling_on_a_strict_mta(legacy_mta) -> None:  # noqa: F811
    mta = legacy_mta()
    # Every sequence is content here: nothing answers early, whatever the wait; 0.15 s is
    # still many times what an in-process reply to a sequence that ended DATA would take.
    opts = SecurityOptions(timeout=5, reply_wait=0.15, smuggling_rcpt="victim@legacy.test")
    [f] = run_checks(target(mta.port), "smuggling", opts)
    assert f.status is Status.OK and set(_verdicts(f).values()) == {"data"}
    assert len(mta.messages) == len(SEQUENCES)


def test_no_smuggling_on_serve_confirmed_end_to_end(serve) -> None:
    server = serve()

    def stored(tag: str) -> int:
        return sum(tag.encode() in m.content for m in server.messages)

    opts = SecurityOptions(timeout=5, reply_wait=0.15, smuggling_rcpt="victim@serve.test",
                           confirm=stored,
                           smuggling_sequences=("lf.lf", "lf.crlf", "cr.cr", "crlf.nul.crlf"))
    [f] = run_checks(target(server.port), "smuggling", opts)
    assert f.status is Status.OK
    assert [(s["verdict"], s["stored"]) for s in f.data["sequences"]] == [("data", 1)] * 4


def test_unknown_smuggling_sequence_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown smuggling sequence"):
        run_checks(target(free_port()), "smuggling", SecurityOptions(smuggling_sequences=("x",)))


# ---- real Postfix -----------------------------------------------------------------------------

PF_LF_SEQUENCES = {"lf.lf", "lf.crlf", "crlf.lf"}  # bare LF ends a line for Postfix


@pytest.mark.interop
@pytest.mark.xdist_group("postfix-tls")
def test_postfix_without_forbid_bare_newline_is_smuggling_vulnerable(postfix, tls_certs) -> None:  # noqa: F811
    pf = postfix(tls=tls_certs.valid, forbid_bare_newline=False)
    # Postfix (another process) answers a sequence that ended DATA within milliseconds.
    opts = SecurityOptions(timeout=5, reply_wait=0.3, smuggling_rcpt="victim@pf.test")
    [f] = run_checks(target(pf.port), "smuggling", opts)
    verdicts = _verdicts(f)
    # What Postfix 3.7 really does: a bare LF ends a line, so "\n.\n", "\n.\r\n" and
    # "\r\n.\n" each end DATA (CVE-2023-51764); bare CR and NUL variants stay content.
    assert f.status is Status.FAIL
    assert {n for n, v in verdicts.items() if v == "end-of-data"} == PF_LF_SEQUENCES
    assert {v for n, v in verdicts.items() if n not in PF_LF_SEQUENCES} == {"data"}
    # End to end through Postfix's own Maildir: the hidden message really is delivered.
    confirm = SecurityOptions(timeout=5, reply_wait=0.3, smuggling_rcpt="victim@pf.test",
                              smuggling_sequences=("lf.crlf", "cr.cr"),
                              confirm=maildir_counter(str(pf.maildir)))
    [c] = run_checks(target(pf.port), "smuggling", confirm)
    assert [(s["name"], s["stored"]) for s in c.data["sequences"]] == [("lf.crlf", 2), ("cr.cr", 1)]


@pytest.mark.interop
@pytest.mark.xdist_group("postfix-security")
def test_postfix_with_forbid_bare_newline_is_not(postfix, tls_certs) -> None:  # noqa: F811
    pf = postfix(tls=tls_certs.valid, forbid_bare_newline=True)
    opts = SecurityOptions(timeout=5, reply_wait=0.25, smuggling_rcpt="victim@pf.test")
    found = by_id(run_checks(target(pf.port), "smuggling,starttls-injection,auth-plain", opts))
    # Postfix 3.7.11's "yes" normalises bare LF inside content instead of ending DATA there,
    # so every sequence is kept as message content (none is refused).
    assert found["security.smuggling"].status is Status.OK
    assert set(_verdicts(found["security.smuggling"]).values()) == {"data"}
    assert found["security.starttls-injection"].status is Status.OK
    assert found["security.starttls-injection"].data["verdict"] == "not-vulnerable"
    assert found["security.auth-before-tls"].status is Status.OK


@pytest.mark.interop
@pytest.mark.xdist_group("postfix-security")
def test_postfix_relay_and_enumeration(postfix) -> None:  # noqa: F811
    # Loopback is in the fixture's mynetworks, so Postfix relays for us by design.
    trusted = postfix()
    opts = SecurityOptions(timeout=5, reply_wait=0.3, user_domain="pf.test")
    found = by_id(run_checks(target(trusted.port), "relay,enum", opts))
    assert found["security.open-relay"].status is Status.FAIL
    assert found["security.vrfy-enum"].status is Status.OK  # 252 to every name
    assert found["security.expn-enabled"].status is Status.OK
    closed = postfix(extra={"mynetworks": "192.0.2.0/24", "smtpd_error_sleep_time": "0"})
    [relay] = run_checks(target(closed.port), "relay", opts)
    assert relay.status is Status.OK and relay.data["tried"] == 16
    assert all("Relay access denied" in r.get("rcpt_reply", "") for r in relay.data["results"]
               if "rcpt_reply" in r)
    # RSET after every try: no message entered either queue (qmgr logs size= for each).
    assert " size=" not in trusted.log() + closed.log()


# ---- behaviour the real servers showed (issue 12), reproduced by scripted peers ----------------


def _exim_like(index: int) -> list:
    """Refuses every MAIL with 501 and hangs up at the third, as Exim does for address literals
    (smtp_max_synprot_errors)."""
    steps = [BANNER, Expect(b"EHLO"), Send(b"250 exim.test\r\n")]
    for n in range(3):
        steps += [Expect(b"MAIL"), Send(b"501 <x@[127.0.0.1]>: domain literals not allowed\r\n")]
        if n < 2:
            steps += [Expect(b"RSET"), Send(b"250 Reset OK\r\n")]
    return steps  # then EOF: the server hung up


def test_relay_probe_reconnects_after_hang_ups_and_tries_every_form(scripted_peer) -> None:
    peer = scripted_peer(_exim_like)
    [f] = run_checks(target(peer.port), "relay", FAST)
    assert f.status is Status.OK, f.summary
    assert f.data["tried"] == N_FORMS and f.data["outcomes"]["syntax"] == N_FORMS
    assert f.data["reconnects"] == (N_FORMS - 1) // 3
    assert len(f.data["forms"]) == N_FORMS and "reconnected" in f.summary


def test_challenge_response_before_tls_is_a_warning(scripted_peer) -> None:
    peer = scripted_peer([
        BANNER, Expect(b"EHLO"), Send(b"250-dove.test\r\n250 AUTH CRAM-MD5\r\n"),
        Expect(b"AUTH PLAIN"), Send(b"523 5.7.10 Plaintext authentication disabled.\r\n"),
        Expect(b"AUTH CRAM-MD5"), Send(b"334 PDEyMzQ1QGRvdmUudGVzdD4=\r\n"), Expect(b"*"),
        Send(b"501 5.5.2 Authentication aborted by client.\r\n"),
        Expect(b"QUIT"), Send(b"221 bye\r\n"),
    ])
    [f] = run_checks(target(peer.port), "auth-plain", FAST)
    assert f.status is Status.WARN and f.data["accepted"] == ["CRAM-MD5"]
    assert "523 5.7.10" in f.summary and "password does not travel" in f.summary
    assert peer.received[1:5] == [b"AUTH PLAIN\r\n", b"AUTH CRAM-MD5\r\n", b"*\r\n", b"QUIT\r\n"]


def test_closing_on_pipelined_starttls_is_a_defence(scripted_peer, tls_certs) -> None:
    def script(index: int) -> list:
        head = [BANNER, Expect(b"EHLO"), Send(b"250-dove.test\r\n250 STARTTLS\r\n"),
                Expect(b"STARTTLS")]
        if index == 0:
            return head  # sees the pipelined RSET and hangs up, as Dovecot does
        return head + [Send(b"220 2.0.0 Begin TLS\r\n"), StartTLS(tls_certs.valid.server_context()),
                       Expect(b"EHLO"), Send(b"250 dove.test\r\n"), Expect(b"QUIT"),
                       Send(b"221 bye\r\n")]

    peer = scripted_peer(script)
    [f] = run_checks(target(peer.port), "starttls-injection", FAST)
    assert f.status is Status.OK and f.data["verdict"] == "closed", f.summary
    assert "closed the connection" in f.summary


def test_credentials_go_only_to_the_probes_that_need_a_session(scripted_peer) -> None:
    from smtpcli.security.common import open_session

    peer = scripted_peer([BANNER, Expect(b"EHLO"), Send(b"250-sub.test\r\n250 AUTH PLAIN LOGIN\r\n"),
                          Expect(b"AUTH PLAIN "), Send(b"235 2.7.0 Authentication successful\r\n"),
                          Expect(b"QUIT"), Send(b"221 bye\r\n")])
    opts = SecurityOptions(timeout=5, username="alice", password="pw-not-shown")
    wire = open_session(target(peer.port), opts, auth=True)
    wire.command("QUIT")
    wire.close()
    import base64

    assert peer.received[1] == b"AUTH PLAIN " + base64.b64encode(b"\0alice\0pw-not-shown") + b"\r\n"
    shown = " ".join(line["line"] for line in wire.transcript)
    assert "pw-not-shown" not in shown and "[redacted]" in shown
    assert base64.b64encode(b"\0alice\0pw-not-shown").decode() not in shown


def test_mail_domain_from_a_full_known_address_or_the_server_name() -> None:
    assert SecurityOptions(known_users=("bob@corp.test",)).mail_domain("mx.other.test") == (
        "corp.test", "the domain of bob@corp.test")
    assert SecurityOptions().mail_domain("mx1.example.org")[0] == "example.org"
    assert SecurityOptions(user_domain="given.test").mail_domain("mx.x.test")[0] == "given.test"
