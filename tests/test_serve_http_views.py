"""Pure parts of the HTTP API: the address fast path and the search language (hypothesis)."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpcli.server.message_view import _addresses, decode_words
from smtpcli.server.search import Facts, SearchError, compile_query

ADDRESS_CHARS = st.text(alphabet=st.sampled_from(list('ab.-_ @<>",;:()\\xyz=?[]')), max_size=30)


def _stdlib(value: str) -> list[dict[str, str]]:
    return [{"Name": decode_words(n), "Address": a}
            for n, a in email.utils.getaddresses([value]) if a or n]


@settings()
@given(ADDRESS_CHARS)
def test_address_fast_path_agrees_with_the_standard_library(value: str) -> None:
    assert _addresses([value]) == _stdlib(value)


@pytest.mark.parametrize("value", ["Alice <alice@example.test>", "bob@example.test",
                                   '"Smith, Bob" <b@y.test>', "a@x.test, b@y.test",
                                   "=?utf-8?q?Caf=C3=A9?= <c@x.test>"])
def test_address_examples(value: str) -> None:
    assert _addresses([value]) == _stdlib(value)
    assert decode_words("=?utf-8?q?Caf=C3=A9?=") == "Caf\u00e9"


def _facts(**kw: object) -> Facts:
    base: dict[str, object] = dict(text="", to="", from_="", cc="", bcc="", subject="",
                                   message_id="", reply_to="", filenames="", read=False,
                                   attachments=0, inline=0)
    base.update(kw)
    return Facts(**base)  # type: ignore[arg-type]


def test_search_terms() -> None:
    f = _facts(text="welcome bob", to="bob <bob@x.test>", subject="welcome aboard", read=True)
    assert compile_query("to:bob@x")(f) and compile_query("-to:carol")(f)
    assert compile_query('subject:"welcome aboard" is:read')(f)
    assert not compile_query("is:unread")(f) and not compile_query("has:attachment")(f)
    assert compile_query("WELCOME")(f) and not compile_query("!welcome")(f)
    assert compile_query("addressed:bob")(f) and compile_query("")(f)


@given(st.text(max_size=40))
def test_any_query_compiles_or_says_why(query: str) -> None:
    try:
        predicate = compile_query(query)
    except SearchError as exc:
        assert str(exc)
    else:
        assert predicate(_facts()) in (True, False)


SIMPLE = [
    b"From: Alice <alice@shop.test>\r\nTo: bob@example.test, Carol <carol@example.test>\r\n"
    b"Subject: Your order 42\r\nMessage-ID: <m1@shop.test>\r\n\r\nThanks for ordering.\r\n",
    b"From: noreply@bank.test\r\nTo: dave@example.test\r\nCc: eve@example.test\r\n"
    b"Subject: Statement\r\n  ready\r\nContent-Type: text/html; charset=\"iso-8859-1\"\r\n\r\n"
    b"<p>Your <b>statement</b> \xe9</p>\r\n",
    b"Subject: no addresses\r\nContent-Transfer-Encoding: 8bit\r\n\r\nbare body words \xc3\xa9\r\n",
    b"Subject: empty body\r\n\r\n",
]


@pytest.mark.parametrize("content", SIMPLE)
def test_quick_parse_gives_what_the_full_parser_gives(content: bytes) -> None:
    from smtpcli.server.message_view import parse_full
    from smtpcli.server.quick_parse import quick_parse

    quick = quick_parse(content)
    assert quick is not None
    full = parse_full(content)
    assert quick == (full.headers, full.text, full.html)
    assert not full.attachments and not full.inline


@pytest.mark.parametrize("content", [
    b"Subject: =?utf-8?q?Caf=C3=A9?= \xc3\xa9\r\n\r\nx\r\n",   # 8-bit header
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--\r\n",
    b"Content-Transfer-Encoding: base64\r\n\r\naGk=\r\n",
    b"Content-Type: application/pdf\r\n\r\n%PDF\r\n",
    b"From someone Sat Dec  5 12:00:00 2026\r\nSubject: x\r\n\r\nx\r\n",
    b" folded first\r\nSubject: x\r\n\r\nx\r\n",
    b"no header end",
])
def test_quick_parse_leaves_the_rest_to_the_full_parser(content: bytes) -> None:
    from smtpcli.server.quick_parse import quick_parse

    assert quick_parse(content) is None


@given(st.binary(max_size=200))
def test_quick_parse_agrees_or_declines(content: bytes) -> None:
    from smtpcli.server.message_view import parse_full
    from smtpcli.server.quick_parse import quick_parse

    quick = quick_parse(content)
    if quick is not None:
        full = parse_full(content)
        assert quick == (full.headers, full.text, full.html)


def test_a_reader_that_falls_behind_is_cut_off_not_buffered_forever() -> None:
    import asyncio
    import time

    from smtpcli.server.http.live import QUEUE_MAX, Hub
    from smtpcli.server.mailbox import Mailbox
    from smtpcli.server.storage import StoredMessage

    async def main() -> None:
        box = Mailbox()
        hub = Hub(box, asyncio.get_running_loop())
        box.subscribe(hub.listener)
        stalled: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_MAX)
        hub.streams.add(stalled)
        for n in range(QUEUE_MAX + 5):
            box.add(StoredMessage(seq=n, id=f"m{n}", received_at=time.time(), peer=None,
                                  helo=None, mail_from="a@x.test", rcpt_tos=["b@y.test"],
                                  mail_options=[], rcpt_options=[],
                                  content=b"Subject: s\r\n\r\nbody\r\n"))
        await asyncio.sleep(0.1)  # let the dispatches run
        assert stalled not in hub.streams  # cut off
        assert stalled.qsize() == QUEUE_MAX
        frames = [stalled.get_nowait() for _ in range(QUEUE_MAX)]
        assert frames[-1] is None  # told to end (the browser reconnects and reloads)
        assert box.total == QUEUE_MAX + 5  # the mailbox lost nothing

    asyncio.run(main())
