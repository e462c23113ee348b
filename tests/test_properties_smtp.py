"""Property tests (hypothesis) for the client-side parsers: targets, SMTP replies read off a real
socket, --from/--to addresses, --header and --mail-param."""

from __future__ import annotations

import re
import socket

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from smtpcli.errors import SmtpcliError, UsageError
from smtpcli.smtp.connection import MAX_REPLY_LINES, MAXLINE, ConnectOptions, SmtpConnection
from smtpcli.smtp.message import check_address, parse_header_option
from smtpcli.smtp.reply import Reply
from smtpcli.smtp.sendplan import _addresses
from smtpcli.smtp.target import Target, TlsMode, default_tls_mode, parse_target
from smtpcli.smtp.transaction import _QUEUE_ID_PATTERNS, check_param, queue_id

FAST = settings(deadline=None)

# --- targets -------------------------------------------------------------------------------

label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
hostname = st.lists(label, min_size=1, max_size=4).map(".".join)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
ports = st.integers(1, 65535)
target_chars = st.lists(st.sampled_from(list("ab1:[]./@-_%² \t٣") + ["smtp://", "::"]),
                        max_size=20).map("".join)


@FAST
@given(st.one_of(st.text(max_size=60), target_chars),
       st.sampled_from([None, "starttls", "none", "bogus"]), st.sampled_from([None, 2525]))
@example("a:²", None, None)  # superscript two: str.isdigit() but not int()-able
@example("[::1]:²", None, None)
@example("smtp://a:¹²", None, None)
def test_any_text_is_a_target_or_usage_error(text: str, tls: str | None, port: int | None) -> None:
    try:
        t = parse_target(text, tls=tls, port=port)
    except UsageError:
        return
    assert isinstance(t, Target)
    assert 0 < t.port < 65536 and t.host
    assert isinstance(t.tls, TlsMode)


@FAST
@given(st.one_of(hostname, ipv4), st.one_of(st.none(), ports))
def test_host_and_port_round_trip(host: str, port: int | None) -> None:
    text = host if port is None else f"{host}:{port}"
    t = parse_target(text)
    assert (t.host, t.port) == (host, port or 25)
    assert t.tls is default_tls_mode(t.port)
    again = parse_target(t.display)
    assert (again.host, again.port, again.tls) == (t.host, t.port, t.tls)


@FAST
@given(ipv6, st.one_of(st.none(), ports))
def test_ipv6_literal_round_trip(addr: str, port: int | None) -> None:
    t = parse_target(f"[{addr}]" + ("" if port is None else f":{port}"))
    assert (t.host, t.port) == (addr, port or 25)
    assert t.display == f"[{addr}]:{t.port}"
    assert parse_target(t.display).host == addr
    assert parse_target(addr).host == addr  # a bare literal without port


@FAST
@given(st.sampled_from(["smtp", "smtps", "submission", "submissions", "SMTP"]),
       st.one_of(hostname, ipv4, ipv6.map(lambda a: f"[{a}]")), st.one_of(st.none(), ports),
       st.sampled_from(["", "/", "/path?x=1"]))
def test_urls(scheme: str, host: str, port: int | None, tail: str) -> None:
    t = parse_target(f"{scheme}://{host}" + ("" if port is None else f":{port}") + tail)
    assert t.host == host.strip("[]")
    defaults = {"smtp": (25, TlsMode.OPPORTUNISTIC), "smtps": (465, TlsMode.IMPLICIT),
                "submission": (587, TlsMode.STARTTLS), "submissions": (465, TlsMode.IMPLICIT)}
    dport, dmode = defaults[scheme.lower()]
    assert t.port == (port or dport)
    if port is None:
        assert t.tls is dmode
    # Separate --port / --tls-mode always win over the text.
    forced = parse_target(f"{scheme}://{host}", port=2525, tls="none")
    assert (forced.port, forced.tls) == (2525, TlsMode.NONE)


# --- replies off a real socket ---------------------------------------------------------------

def _read_all(data: bytes, *, ehlo: bool = False) -> tuple[list[Reply], BaseException | None]:
    """Feed `data` (then EOF) to a connection over a socketpair; read replies until it fails."""
    ours, theirs = socket.socketpair()
    conn = SmtpConnection(parse_target("127.0.0.1:25"), ConnectOptions(timeout=2.0))
    conn.sock = ours
    replies: list[Reply] = []
    try:
        theirs.sendall(data)
        theirs.shutdown(socket.SHUT_WR)
        for _ in range(len(data) + 2):
            if ehlo:
                replies.append(conn.hello())
            else:
                replies.append(conn.read_reply())
        raise AssertionError("more replies than bytes")
    except SmtpcliError as exc:
        return replies, exc
    finally:
        conn.close()
        theirs.close()


reply_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(st.one_of(
        st.sampled_from([b"220 ok\r\n", b"250-x\r\n", b"250 y\n", b"250\r\n", b"25", b"\r\n",
                         b"550-5.1.1 a\r\n", b"\xff\xfe\r\n", b"999 x\r\n", b"2500 x\r\n",
                         b"250-SIZE\r\n", b"250-AUTH PLAIN\r\n", b"250 8BITMIME\r\n"]),
        st.binary(max_size=20)), max_size=20).map(b"".join),
)


@FAST
@given(reply_bytes)
@example(b"250-" * 2 + b"x" * (MAXLINE + 10) + b"\r\n")
@example(b"250-x\r\n" * (MAX_REPLY_LINES + 1))
def test_any_bytes_end_in_replies_or_an_smtpcli_error(data: bytes) -> None:
    replies, exc = _read_all(data)
    assert isinstance(exc, SmtpcliError) and exc.exit_code == 3, exc
    for r in replies:
        assert 200 <= r.code <= 599 and 1 <= len(r.lines) <= MAX_REPLY_LINES
        r.to_dict()
        r.one_line()


@FAST
@given(reply_bytes)
def test_any_bytes_through_ehlo_end_in_replies_or_an_smtpcli_error(data: bytes) -> None:
    _replies, exc = _read_all(data, ehlo=True)
    assert isinstance(exc, SmtpcliError)


reply_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
well_formed = st.lists(
    st.tuples(st.integers(200, 599), st.lists(reply_text, min_size=1, max_size=5),
              st.sampled_from([b"\r\n", b"\n"])),
    min_size=1, max_size=6)


@FAST
@given(well_formed)
def test_well_formed_replies_round_trip(replies: list[tuple[int, list[str], bytes]]) -> None:
    wire = b""
    for code, lines, eol in replies:
        for n, line in enumerate(lines):
            sep = " " if n == len(lines) - 1 else "-"
            wire += f"{code}{sep}{line}".encode() + eol
    got, exc = _read_all(wire)
    assert isinstance(exc, SmtpcliError) and "closed the connection" in str(exc)
    # Trailing CR/LF of a line are line ending, never text.
    want = [(code, tuple(line.rstrip("\r\n") for line in lines)) for code, lines, _ in replies]
    assert [(r.code, r.lines) for r in got] == want


# --- addresses, --header, --mail-param -------------------------------------------------------

atom = st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,12}", fullmatch=True)
local_part = st.lists(atom, min_size=1, max_size=3).map(".".join)
mailbox = st.tuples(local_part, hostname).map(lambda p: f"{p[0]}@{p[1]}")


@FAST
@given(st.text(max_size=60), st.booleans())
@example("a@b\r\nRCPT TO:<x@y>", False)
@example("<>", True)
def test_any_text_is_an_address_or_usage_error(text: str, allow_empty: bool) -> None:
    try:
        addr = check_address(text, "--to", allow_empty=allow_empty)
    except UsageError:
        return
    # What goes into MAIL FROM:<...>/RCPT TO:<...> can never break the command line.
    assert not any(c in addr for c in "\r\n <>")
    assert addr == "" and allow_empty or addr.count("@") == 1


@FAST
@given(mailbox, st.sampled_from(["{}", "<{}>", " {} ", "Name <{}>", '"Last, First" <{}>']))
def test_generated_mailboxes_are_accepted(addr: str, shape: str) -> None:
    if "<" not in shape or shape == "<{}>":
        assert check_address(shape.format(addr), "--to") == addr
    assert _addresses((shape.format(addr),), "--to") == [addr]


@FAST
@given(st.text(max_size=60))
def test_any_to_option_is_addresses_or_usage_error(text: str) -> None:
    try:
        out = _addresses((text,), "--to")
    except UsageError:
        return
    assert all("@" in a and not any(c in a for c in "\r\n ") for a in out)


field_name = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126,
                                            blacklist_characters=":"), min_size=1, max_size=20)
field_value = st.text(alphabet=st.characters(blacklist_categories=["Cs"],
                                             blacklist_characters="\r\n"), max_size=40)


@FAST
@given(field_name, field_value)
def test_header_option_round_trip(name: str, value: str) -> None:
    assert parse_header_option(f"{name}: {value}") == (name, value.strip())
    assert parse_header_option(f"{name}:{value}") == (name, value.strip())


@FAST
@given(st.text(max_size=60))
@example("X-A: b\r\nBcc: c@d")
def test_any_header_option_is_a_pair_or_usage_error(text: str) -> None:
    try:
        name, value = parse_header_option(text)
    except UsageError:
        return
    assert name and ":" not in name and not any(c in name + value for c in "\r\n")


keyword = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,15}", fullmatch=True)
param_value = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                             blacklist_characters="="), min_size=1, max_size=20)


@FAST
@given(keyword, st.one_of(st.none(), param_value))
def test_esmtp_param_round_trip(key: str, value: str | None) -> None:
    text = key if value is None else f"{key}={value}"
    assert check_param(text, "--mail-param") == text


@FAST
@given(st.text(max_size=40))
@example("SIZE=1\r\nRCPT TO:<x@y>")
@example("BODY=8BITMIME\n")
def test_any_mail_param_is_itself_or_usage_error(text: str) -> None:
    try:
        out = check_param(text, "--mail-param")
    except UsageError:
        return
    assert out == text and out.isascii() and not any(c.isspace() for c in out)


def test_usage_errors_for_bad_params() -> None:
    for bad in ("", "=x", "-X", "A=", "A=b c", "A=\u00e9"):
        with pytest.raises(UsageError):
            check_param(bad, "--mail-param")


def _queue_id_unguarded(text: str) -> str | None:
    for _, pattern in _QUEUE_ID_PATTERNS:
        m = re.search(pattern, text, re.I)
        if m:
            return m.group(1)
    return None


_QUEUE_WORDS = st.sampled_from(["queued as ", "id=", " - gsmtp", "Message accepted for delivery ",
                                "Ok: ", "QUEUED ", "accepted ", "OK 17 ", "<a@b> ", "\u0130D=",
                                "queued a\u017f ", "\u0131d=", "4F1AB2C3D4"])


@FAST
@given(st.lists(st.one_of(_QUEUE_WORDS, st.text(max_size=12)), max_size=8))
def test_queue_id_word_guard_skips_only_patterns_that_cannot_match(parts: list[str]) -> None:
    """queue_id() tries a pattern only when the reply holds one of its words (issue 17: fewer
    regex compiles per send); the answer must be the one of trying every pattern."""
    text = "".join(parts)
    assert queue_id(Reply(250, (text,))) == _queue_id_unguarded(text)
