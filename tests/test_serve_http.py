"""`smtpcli serve --http`: the Mailpit API v1 subset and serve's extras, over real HTTP.

One server per module (real aiosmtpd + aiohttp on free loopback ports, STARTTLS with a
throwaway certificate, AUTH accepting anyone); every test sends its own messages with a unique
tag in the subject and looks only at those, so tests do not depend on each other's order.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
import threading
import time
import urllib.parse
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from smtpcli.server.config import ServeConfig
from smtpcli.server.runner import run_in_thread
from tests.http_client import call, get


@pytest.fixture(scope="module")
def served():
    server = run_in_thread(ServeConfig(
        port=0, http_port=0, tls_self_signed=True, auth_accept_any=True, grace=0.5,
    ))
    yield server
    server.stop()


@pytest.fixture
def base(served) -> str:
    return served.server.http.url


def _tag() -> str:
    return uuid.uuid4().hex[:10]


def send(served, subject: str, *, to: str = "bob@example.test", sender: str = "alice@example.test",
         body: str = "hello", html: str | None = None, attach: tuple[str, bytes] | None = None,
         extra_rcpt: list[str] | None = None, tls: bool = False, user: str | None = None) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"Alice <{sender}>", to, subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@example.test>"
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    if attach is not None:
        msg.add_attachment(attach[1], maintype="application", subtype="octet-stream",
                           filename=attach[0])
    with smtplib.SMTP(served.host, served.port, timeout=10) as smtp:
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            smtp.starttls(context=ctx)
        if user:
            smtp.login(user, "secret-pw")
        smtp.send_message(msg, to_addrs=[to, *(extra_rcpt or [])])


def search(base: str, query: str, **params: Any) -> dict[str, Any]:
    qs = urllib.parse.urlencode({"query": query, **params})
    result: dict[str, Any] = get(base, f"/api/v1/search?{qs}")
    return result


def test_list_newest_first_with_counts_and_pages(served, base) -> None:
    tag = _tag()
    for n in range(3):
        send(served, f"{tag} number {n}")
    found = search(base, tag)
    assert [m["Subject"] for m in found["messages"]] == [f"{tag} number {n}" for n in (2, 1, 0)]
    assert found["messages_count"] == 3
    page = search(base, tag, start=1, limit=1)
    assert [m["Subject"] for m in page["messages"]] == [f"{tag} number 1"]
    assert page["start"] == 1 and page["messages_count"] == 3
    listing = get(base, "/api/v1/messages?limit=2")
    assert len(listing["messages"]) == 2 and listing["total"] >= 3
    assert listing["messages"][0]["Subject"] == f"{tag} number 2"
    first = listing["messages"][0]
    assert first["From"] == {"Name": "Alice", "Address": "alice@example.test"}
    assert first["To"] == [{"Name": "", "Address": "bob@example.test"}]
    assert first["Read"] is False and first["Snippet"] == "hello"
    info = get(base, "/api/v1/info")
    assert info["Messages"] == listing["total"] and info["Unread"] == listing["unread"]


def test_message_text_html_attachments_and_parts(served, base) -> None:
    tag = _tag()
    payload = bytes(range(256)) * 4
    send(served, f"{tag} rich", body="plain words", html="<p>html <b>words</b></p>",
         attach=("report.bin", payload), extra_rcpt=["hidden@example.test"])
    msg_id = search(base, tag)["messages"][0]["ID"]
    msg = get(base, f"/api/v1/message/{msg_id}")
    assert msg["Subject"] == f"{tag} rich"
    assert msg["Text"].strip() == "plain words" and "<b>words</b>" in msg["HTML"]
    assert msg["Bcc"] == [{"Name": "", "Address": "hidden@example.test"}]  # envelope-only
    [att] = msg["Attachments"]
    assert att["FileName"] == "report.bin" and att["Size"] == len(payload)
    assert att["Checksums"]["SHA256"] == hashlib.sha256(payload).hexdigest()
    status, body, headers = call(base, "GET", f"/api/v1/message/{msg_id}/part/{att['PartID']}")
    assert status == 200 and body == payload
    assert headers["Content-Type"] == "application/octet-stream"
    # Viewing marked it read, as in Mailpit.
    assert search(base, f"{tag} is:read")["messages_count"] == 1


def test_raw_and_headers(served, base) -> None:
    tag = _tag()
    send(served, f"{tag} raw")
    raw = get(base, "/api/v1/message/latest/raw")
    assert f"Subject: {tag} raw" in raw and raw.startswith("Received: from ")
    headers = get(base, "/api/v1/message/latest/headers")
    assert headers["Subject"] == [f"{tag} raw"] and list(headers) == sorted(headers)


def test_search_filters(served, base) -> None:
    tag = _tag()
    send(served, f"{tag} invoice due", to="carol@example.test", body="pay by friday")
    send(served, f"{tag} welcome", to="dave@example.test", sender="noreply@shop.test",
         body="confirm at https://shop.test/c/123")
    assert search(base, f"{tag} to:carol")["messages"][0]["Subject"] == f"{tag} invoice due"
    assert search(base, f"{tag} from:noreply@shop")["messages_count"] == 1
    assert search(base, f'{tag} subject:"invoice due"')["messages_count"] == 1
    assert search(base, f"{tag} friday")["messages_count"] == 1  # bare word in the body
    assert search(base, f"{tag} -to:carol")["messages_count"] == 1
    assert search(base, f"{tag} is:unread")["messages_count"] == 2
    assert search(base, f"{tag} has:attachment")["messages_count"] == 0
    for bad in ('subject:"open', "is:sideways", "to:"):
        status, body, _ = call(base, "GET", "/api/v1/search?" + urllib.parse.urlencode({"query": bad}))
        assert status == 400 and body["Error"], bad


def test_read_status_and_delete(served, base) -> None:
    tag = _tag()
    for n in range(3):
        send(served, f"{tag} m{n}")
    ids = [m["ID"] for m in search(base, tag)["messages"]]
    assert call(base, "PUT", "/api/v1/messages", {"IDs": ids[:2], "Read": True})[1] == "ok"
    assert search(base, f"{tag} is:read")["messages_count"] == 2
    assert call(base, "PUT", "/api/v1/messages", {"Search": tag, "Read": False})[1] == "ok"
    assert search(base, f"{tag} is:unread")["messages_count"] == 3
    assert call(base, "DELETE", "/api/v1/messages", {"IDs": [ids[0]]})[1] == "ok"
    assert {m["ID"] for m in search(base, tag)["messages"]} == set(ids[1:])
    assert call(base, "GET", f"/api/v1/message/{ids[0]}")[0] == 404
    assert call(base, "DELETE", "/api/v1/search?" + urllib.parse.urlencode({"query": tag}))[0] == 200
    assert search(base, tag)["messages_count"] == 0


def test_envelope_tls_auth_and_transcript(served, base) -> None:
    tag = _tag()
    send(served, f"{tag} secure", tls=True, user="carol", extra_rcpt=["x@example.test"])
    msg_id = search(base, tag)["messages"][0]["ID"]
    env = get(base, f"/api/v1/message/{msg_id}/envelope")
    assert env["mail_from"] == "alice@example.test"
    assert env["rcpt_tos"] == ["bob@example.test", "x@example.test"]
    assert env["tls"]["version"].startswith("TLS") and env["auth"]["user"] == "carol"
    assert "SIZE=" in " ".join(env.get("mail_options", []))  # smtplib sends SIZE
    lines = get(base, f"/api/v1/message/{msg_id}/transcript")["Transcript"]
    assert "C: STARTTLS" in lines and any(x.startswith("S: 250 2.0.0 Ok: queued") for x in lines)
    assert "C: AUTH PLAIN [redacted]" in lines
    assert not any("secret-pw" in x or "Y2Fyb2" in x for x in lines)  # no password, no base64
    assert get(base, f"/api/v1/message/{msg_id}")["Username"] == "carol"


def test_wait_long_polls_until_a_match_arrives(served, base) -> None:
    tag = _tag()
    threading.Timer(0.3, send, (served, f"{tag} late arrival")).start()
    started = time.monotonic()
    status, msg, headers = call(base, "GET", f"/api/v1/wait?query=subject:{tag}&timeout=10")
    assert status == 200 and msg["Subject"] == f"{tag} late arrival"
    assert time.monotonic() - started < 9 and headers["X-Messages-Count"] == "1"
    # Already there: answers at once; two needed, one there: times out with 408.
    assert call(base, "GET", f"/api/v1/wait?query=subject:{tag}&timeout=5")[0] == 200
    status, body, _ = call(base, "GET", f"/api/v1/wait?query=subject:{tag}&count=2&timeout=0.2")
    assert status == 408 and "1 of 2" in body["Error"]


def test_chaos_maps_onto_serve_faults(served, base) -> None:
    assert get(base, "/api/v1/chaos")["Sender"] == {"ErrorCode": 451, "Probability": 0}
    status, body, _ = call(base, "PUT", "/api/v1/chaos",
                           {"Recipient": {"ErrorCode": 552, "Probability": 100}})
    assert status == 200 and body["Recipient"] == {"ErrorCode": 552, "Probability": 100}
    try:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as exc:
            send(served, "refused by chaos")
        assert exc.value.recipients["bob@example.test"][0] == 552
    finally:
        assert call(base, "PUT", "/api/v1/chaos", {})[0] == 200  # all back to 0 %
    send(served, f"{_tag()} accepted again")
    for bad in ({"Sender": {"ErrorCode": 250, "Probability": 5}},
                {"Sender": {"ErrorCode": 451, "Probability": 101}}, {"Nope": {}}):
        assert call(base, "PUT", "/api/v1/chaos", bad)[0] == 400, bad


def test_bad_input_answers_json_errors(served, base) -> None:
    for path in ("/api/v1/message/nope", "/api/v1/message/nope/raw", "/api/v1/message/latest/part/99",
                 "/api/v1/nothing-here"):
        status, body, _ = call(base, "GET", path)
        assert status == 404 and isinstance(body, dict) and body["Error"], path
    for path in ("/api/v1/messages?limit=ten", "/api/v1/messages?start=-1",
                 "/api/v1/wait?timeout=forever", "/api/v1/search"):
        status, body, _ = call(base, "GET", path)
        assert status == 400 and body["Error"], path
    assert call(base, "DELETE", "/api/v1/messages", b"{not json")[0] == 400
    assert call(base, "DELETE", "/api/v1/messages", {"IDs": "one"})[0] == 400


def test_broken_mime_still_listed_and_raw(served, base) -> None:
    tag = _tag()
    broken = (f"Subject: {tag} broken\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n"
              "Content-Transfer-Encoding: base64\r\n\r\n--b\r\nContent-Type: text/plain; "
              "charset=x-unknown-charset\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@notbase64"
              "\r\n--b").encode()  # unclosed boundary, bad base64, unknown charset
    with smtplib.SMTP(served.host, served.port, timeout=10) as smtp:
        smtp.sendmail("a@example.test", ["b@example.test"], broken)
    msg_id = search(base, tag)["messages"][0]["ID"]
    assert get(base, f"/api/v1/message/{msg_id}")["Subject"] == f"{tag} broken"
    assert "@@@notbase64" in get(base, f"/api/v1/message/{msg_id}/raw")


def test_view_html_runs_no_script_and_rewrites_cid(served, base) -> None:
    tag = _tag()
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.test", "b@example.test", f"{tag} html"
    msg.set_content("hello")
    msg.add_alternative('<p>hi</p><script>alert(1)</script><img src="http://x.test/a.png">'
                        '<img src="cid:logo@x">', subtype="html")
    msg.get_payload()[1].add_related(b"\x89PNG fake", "image", "png", cid="<logo@x>")
    with smtplib.SMTP(served.host, served.port, timeout=10) as smtp:
        smtp.send_message(msg)
    msg_id = search(base, tag)["messages"][0]["ID"]
    [inline] = get(base, f"/api/v1/message/{msg_id}")["Inline"]
    assert inline["ContentID"] == "logo@x" and inline["ContentType"] == "image/png"
    part_url = f"/api/v1/message/{msg_id}/part/{inline['PartID']}"
    status, _, part_headers = call(base, "GET", part_url)
    assert status == 200 and "sandbox" in part_headers["Content-Security-Policy"]
    status, html, headers = call(base, "GET", f"/view/{msg_id}.html")
    assert status == 200 and "<p>hi</p>" in html
    assert f'src="{part_url}"' in html and "cid:" not in html
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "sandbox" in csp
    assert f"img-src {base.rstrip('/')} data:" in csp
    _, _, remote = call(base, "GET", f"/view/{msg_id}.html?remote=1")
    assert "img-src * data:" in remote["Content-Security-Policy"]
    assert call(base, "GET", f"/view/{msg_id}.txt")[1].strip() == "hello"


def test_maildir_delete_removes_the_file(tmp_path: Path) -> None:
    server = run_in_thread(ServeConfig(port=0, http_port=0, maildir=str(tmp_path / "md"), grace=0.5))
    try:
        base = server.server.http.url
        send(server, "to be deleted")
        files = list((tmp_path / "md" / "new").iterdir())
        assert len(files) == 1
        assert get(base, "/api/v1/info")["Database"] == "maildir"
        assert call(base, "DELETE", "/api/v1/messages")[1] == "ok"
        assert list((tmp_path / "md" / "new").iterdir()) == []
        assert get(base, "/api/v1/messages")["total"] == 0
    finally:
        server.stop()


def test_event_stream_announces_new_messages(served, base) -> None:
    import http.client

    tag = _tag()
    host, port = urllib.parse.urlsplit(base).hostname, urllib.parse.urlsplit(base).port
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/api/v1/events")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
    assert resp.readline().startswith(b": connected")
    send(served, f"{tag} streamed")
    seen = b""
    while tag.encode() not in seen:
        seen += resp.readline()
    assert b"event: new" in seen
    conn.close()
    send(served, f"{tag} after the reader left")  # a gone reader does not hurt SMTP


def test_http_port_taken_is_a_clear_error() -> None:
    import socket

    from smtpcli.errors import IncompleteError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        with pytest.raises(IncompleteError, match="cannot serve HTTP"):
            run_in_thread(ServeConfig(port=0, http_port=taken, grace=0.2))


def test_cli_http_option(cli) -> None:
    code, _, err = cli("serve", "--http", "10.1.2.3:8025")
    assert code == 2 and "not a loopback address" in err
    code, _, err = cli("serve", "--http", "nonsense:port")
    assert code == 2 and "--http" in err


def test_cli_serve_http_subprocess() -> None:
    from tests.servers.serve_bench_helpers import start_serve_process

    proc = start_serve_process("--http", "127.0.0.1:0", "--exit-after", "30", "--expect", "1")
    try:
        url = proc.listening["http"]
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0/")
        with smtplib.SMTP("127.0.0.1", proc.port, timeout=10) as smtp:
            smtp.sendmail("a@example.test", ["b@example.test"], b"Subject: via cli\r\n\r\nhi\r\n")
        assert get(url, "/api/v1/message/latest")["Subject"] == "via cli"
    finally:
        proc.terminate()
    code, events, _ = proc.finish()
    assert code == 0 and events[-1]["event"] == "shutdown"


@pytest.mark.parametrize("store", ["maildir", "mbox"])
def test_messages_already_in_the_store_are_listed(tmp_path: Path, store: str) -> None:
    where = str(tmp_path / store)
    first = run_in_thread(ServeConfig(port=0, grace=0.2, **{store: where}))
    try:
        with smtplib.SMTP(first.host, first.port, timeout=10) as smtp:
            smtp.sendmail("a@example.test", ["b@example.test"],
                          b"Subject: from an earlier run\r\n\r\nFrom the start of a line\r\n")
    finally:
        first.stop()
    second = run_in_thread(ServeConfig(port=0, http_port=0, grace=0.2, **{store: where}))
    try:
        base = second.server.http.url
        send(second, "from this run")
        listing = get(base, "/api/v1/messages")
        assert [m["Subject"] for m in listing["messages"]] == ["from this run", "from an earlier run"]
        assert listing["unread"] == 1  # the earlier one counts as seen
        old = listing["messages"][1]["ID"]
        assert get(base, f"/api/v1/message/{old}")["Text"].strip() == "From the start of a line"
        assert call(base, "DELETE", "/api/v1/messages", {"IDs": [old]})[1] == "ok"
        if store == "maildir":  # Maildir files go with the message; an mbox is append-only
            assert len(list((tmp_path / "maildir" / "new").iterdir())) == 1
    finally:
        second.stop()


def test_transcript_of_a_second_message_on_one_connection(served, base) -> None:
    tag = _tag()
    with smtplib.SMTP(served.host, served.port, timeout=10) as smtp:
        smtp.ehlo("client.test")
        for n in (1, 2):
            smtp.sendmail("a@example.test", [f"r{n}@example.test"],
                          f"Subject: {tag} {n}\r\n\r\nbody\r\n".encode())
    msg_id = search(base, f"subject:'{tag} 2'".replace("'", '"'))["messages"][0]["ID"]
    lines = get(base, f"/api/v1/message/{msg_id}/transcript")["Transcript"]
    assert lines[:2] == ["S: 220 smtpcli.test smtpcli serve", "C: EHLO client.test"]
    assert "[1 earlier message(s) in this session]" in lines
    assert "C: RCPT TO:<r2@example.test>" in lines and "C: RCPT TO:<r1@example.test>" not in lines
    assert lines[-1].startswith("S: 250 2.0.0 Ok: queued as ")


def test_stop_with_an_open_event_stream_and_a_pending_wait() -> None:
    import http.client

    server = run_in_thread(ServeConfig(port=0, http_port=0, grace=0.2))
    parts = urllib.parse.urlsplit(server.server.http.url)
    stream = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    stream.request("GET", "/api/v1/events")
    assert stream.getresponse().status == 200
    answers: list[Any] = []
    waiter = threading.Thread(target=lambda: answers.append(
        call(server.server.http.url, "GET", "/api/v1/wait?timeout=60")), daemon=True)
    waiter.start()
    time.sleep(0.2)  # let the wait register
    server.stop(timeout=15)
    assert not server.thread.is_alive()  # neither the stream nor the wait held shutdown up
    waiter.join(5)
    assert answers[0][0] == 503 and answers[0][1]["Error"] == "serve is shutting down"
    stream.close()


def test_big_message_is_parsed_off_the_loop_and_served_whole(served, base) -> None:
    tag = _tag()
    payload = bytes(range(256)) * 1400  # 350 KiB: parsed in a worker thread
    # A pending wait sees it arrive (the announcement parses it off the loop first).
    threading.Timer(0.3, send, (served, f"{tag} big"), {"attach": ("big.bin", payload)}).start()
    status, waited, _ = call(base, "GET", f"/api/v1/wait?query=subject:{tag}&timeout=10")
    assert status == 200 and waited["Attachments"][0]["Size"] == len(payload)
    msg_id = search(base, tag)["messages"][0]["ID"]
    [att] = get(base, f"/api/v1/message/{msg_id}")["Attachments"]
    assert att["Size"] == len(payload)
    assert call(base, "GET", f"/api/v1/message/{msg_id}/part/{att['PartID']}")[1] == payload
    assert len(get(base, f"/api/v1/message/{msg_id}/raw")) > len(payload)
