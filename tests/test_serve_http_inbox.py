"""The web inbox of ``serve --http`` in a real browser (Debian's headless chromium, DevTools).

A message arrives while the page is open and shows up without a reload; opening it renders its
HTML in the sandboxed frame, where neither its <script> nor an onerror handler runs and its
remote image is not fetched until asked; search filters the list; delete and delete-all work.
Observations are made from outside the frame: a postMessage listener on the inbox page (a
script that ran in the frame could always reach it; a control message proves the listener
works) and a probe HTTP server that counts fetches of the remote image.
"""

from __future__ import annotations

import asyncio
import http.server
import os
import smtplib
import threading
from email.message import EmailMessage
from pathlib import Path

import pytest

from smtpcli.server.config import ServeConfig
from smtpcli.server.runner import run_in_thread
from tests.http_client import call, get
from tests.servers.chromium import Browser, Page, require_chromium

PIXEL = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                      "1f15c4890000000d49444154789c6360000002000105fe02fe0000000049454e44ae426082")


class _Probe(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(PIXEL)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def probe():
    _Probe.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Probe)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _send(served, subject: str, html: str, text: str = "plain part",
          attach: bytes | None = None, sender: str = "shop@example.test") -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"Shop <{sender}>", "Bob <bob@example.test>", subject
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    if attach is not None:
        msg.add_attachment(attach, maintype="application", subtype="pdf", filename="invoice.pdf")
    with smtplib.SMTP(served.host, served.port, timeout=10) as smtp:
        smtp.send_message(msg)


ITEMS = "document.querySelectorAll('#list .item').length"


async def _open(page: Page, subject: str) -> None:
    await page.evaluate("window.__frameLoads = 0; true")
    await page.evaluate(
        f"[...document.querySelectorAll('#list .item')].find(i => i.textContent.includes({subject!r})).click()")
    await page.wait_for(f"document.querySelector('#subject').textContent === {subject!r}")
    await page.wait_for("window.__frameLoads >= 1")  # the sandboxed frame finished loading


async def _scenario(page: Page, served, base: str, probe_port: int, shot: Path | None) -> None:
    await page.call("Page.enable")
    await page.call("Page.navigate", url=base)
    await page.wait_for("document.readyState === 'complete' && !!document.querySelector('#live.on')")
    await page.evaluate("""window.__seen = []; window.__frameLoads = 0;
        addEventListener('message', e => __seen.push(String(e.data)));
        document.querySelector('#html-frame').addEventListener('load', () => __frameLoads++);
        postMessage('control', '*'); true""")
    await page.wait_for("__seen.includes('control')")  # the listener works

    hostile = (f"<h1>Welcome</h1><script>parent.postMessage('script-ran', '*')</script>"
               f"<img src='missing.png' onerror=\"parent.postMessage('onerror-ran', '*')\">"
               f"<img src='http://127.0.0.1:{probe_port}/pixel.png'>")
    await asyncio.to_thread(_send, served, "Welcome aboard", hostile)
    await page.wait_for(f"{ITEMS} === 1")
    # Arrived without a reload: the marker set before the message came is still there.
    assert await page.evaluate("Array.isArray(window.__seen)")

    await _open(page, "Welcome aboard")
    sandbox = await page.evaluate("document.querySelector('#html-frame').getAttribute('sandbox')")
    assert sandbox is not None and not {"allow-scripts", "allow-same-origin"} & set(sandbox.split())
    assert await page.evaluate("__seen") == ["control"]  # no script, no handler ran
    assert _Probe.hits == []  # the remote image was not fetched
    assert "S: 250 2.0.0 Ok: queued" in await page.evaluate("document.querySelector('#transcript').textContent")
    assert await page.evaluate("document.querySelector('#pane-text').textContent.trim()") == "plain part"

    await page.evaluate("document.querySelector('#remote').click()")
    for _ in range(200):  # asked for: now it loads
        if _Probe.hits:
            break
        await asyncio.sleep(0.05)
    assert _Probe.hits == ["/pixel.png"]
    assert await page.evaluate("__seen") == ["control"]

    await asyncio.to_thread(_send, served, "Your invoice #1042",
                            "<h2 style='color:#1f6feb'>Invoice #1042</h2><p>Total due: <b>42.00 EUR</b></p>"
                            "<p><a href='https://shop.example.test/pay/1042'>Pay now</a></p>",
                            text="Total due: 42.00 EUR", attach=b"%PDF-1.4 fake invoice")
    await asyncio.to_thread(_send, served, "Password reset", "<p>Reset: <a href='https://x.test/r'>here</a></p>",
                            sender="security@example.test")
    await page.wait_for(f"{ITEMS} === 3")
    await page.evaluate("document.querySelector('#query').value = 'subject:invoice';"
                        "document.querySelector('#search').requestSubmit(); true")
    await page.wait_for(f"{ITEMS} === 1")
    await page.evaluate("document.querySelector('#query').value = '';"
                        "document.querySelector('#search').requestSubmit(); true")
    await page.wait_for(f"{ITEMS} === 3")
    await _open(page, "Your invoice #1042")
    assert "invoice.pdf" in await page.evaluate("document.querySelector('#attachments').textContent")
    if shot is not None:
        await page.screenshot(shot)

    await page.evaluate("document.querySelector('#delete').click()")
    await page.wait_for(f"{ITEMS} === 2")
    assert get(base, "/api/v1/search?query=subject:invoice")["messages_count"] == 0
    await page.evaluate("document.querySelector('#delete-all').click(); document.querySelector('#delete-all').click()")
    await page.wait_for(f"{ITEMS} === 0")
    assert get(base, "/api/v1/messages")["total"] == 0


@pytest.mark.interop
def test_inbox_in_headless_chromium(tmp_path: Path, probe) -> None:
    missing = require_chromium()
    if missing:
        if os.environ.get("SMTPCLI_REQUIRE_INTEROP"):
            pytest.fail(f"{missing} (SMTPCLI_REQUIRE_INTEROP is set)")
        pytest.skip(missing)
    served = run_in_thread(ServeConfig(port=0, http_port=0, grace=0.5))
    shot = os.environ.get("SMTPCLI_INBOX_SCREENSHOT")
    try:
        base = served.server.http.url

        async def main() -> None:
            async with Browser(tmp_path / "profile") as page:
                await _scenario(page, served, base, probe.server_address[1],
                                Path(shot) if shot else None)

        asyncio.run(main())
        # The inbox page itself answers with a CSP that allows only its own script.
        _, _, headers = call(base, "GET", "/")
        assert "default-src 'self'" in headers["Content-Security-Policy"]
    finally:
        served.stop()
