"""serve's own endpoints, where Mailpit has nothing: SMTP facts, long-poll wait, live events.

* ``GET /api/v1/message/{ID}/envelope``   MAIL FROM / RCPT TO with parameters, peer, HELO,
  TLS and AUTH facts of the session
* ``GET /api/v1/message/{ID}/transcript`` the SMTP dialogue up to this message (AUTH redacted)
* ``GET /api/v1/wait?query=&timeout=&count=`` answers as soon as ``count`` messages match
  (those already there count), with the newest match; 408 after ``timeout`` seconds
* ``GET /api/v1/events``  server-sent events ``new``, ``delete``, ``read`` for the web inbox
* ``GET /view/{ID}.html`` / ``.txt``  the HTML or text body alone (Mailpit's render routes),
  HTML served under a Content-Security-Policy that runs no script and loads no remote image
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from smtpcli.server import message_view as view
from smtpcli.server.http.common import (
    BIG,
    entry_or_404,
    error_exception,
    float_param,
    int_param,
    mailbox,
    matching,
    parsed,
    query_predicate,
)
from smtpcli.server.mailbox import Entry, Mailbox
from smtpcli.server.search import Predicate

WAIT_MAX_S = 300.0
QUEUE_MAX = 1000  # events a slow inbox may lag behind before it is cut off (it reconnects)


class ShuttingDown(Exception):
    """serve is stopping: pending waits answer 503 instead of hanging up."""


@dataclass
class _Waiter:
    predicate: Predicate | None
    needed: int
    future: asyncio.Future[Entry]
    matched: set[str] = field(default_factory=set)  # IDs, so no message counts twice


@dataclass
class Hub:
    """Lives on the HTTP loop: fans mailbox changes out to event streams and waiters."""

    box: Mailbox
    loop: asyncio.AbstractEventLoop
    streams: set[asyncio.Queue[str | None]] = field(default_factory=set)
    waiters: list[_Waiter] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)  # held so none is collected

    def listener(self, kind: str, data: dict[str, Any]) -> None:
        """Mailbox listener: called from any thread, hops onto the loop.

        With no event stream, no waiter and nobody searching, there is nobody to tell and
        nothing is scheduled. A waiter registers before it looks at the mailbox, so it cannot
        miss a message.
        """
        if not self.streams and not self.waiters and not self.box.keep_warm:
            return
        try:
            same_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:  # called from a thread without a loop
            same_loop = False
        with contextlib.suppress(RuntimeError):  # loop closed: the HTTP side is stopping
            if same_loop:  # the usual case: SMTP and HTTP share serve's loop (no wake-up write)
                self.loop.call_soon(self._dispatch, kind, data)
            else:
                self.loop.call_soon_threadsafe(self._dispatch, kind, data)

    def _dispatch(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "new":
            entry = self.box.get(data["ID"])
            if entry is None:
                return
            if entry.facts is None and entry.msg.size > BIG:
                task = self.loop.create_task(self._prepare_then_announce(entry))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                return
            self._announce_new(entry)
            return
        self._send(kind, data)

    async def _prepare_then_announce(self, entry: Entry) -> None:
        await asyncio.to_thread(self.box.facts, entry)  # a big message: parsed off the loop
        self._announce_new(entry)

    def _announce_new(self, entry: Entry) -> None:
        if self.box.keep_warm or self.waiters:
            self.box.facts(entry)
        self._wake(entry)
        if self.streams:
            self._send("new", self.box.summary(entry))

    def _send(self, kind: str, data: dict[str, Any]) -> None:
        frame = f"event: {kind}\ndata: {json.dumps(data)}\n\n"
        for queue in list(self.streams):
            try:
                queue.put_nowait(frame)
            except asyncio.QueueFull:  # too slow a reader: cut it off, it reconnects
                self.streams.discard(queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.get_nowait()
                    queue.put_nowait(None)

    def _wake(self, entry: Entry) -> None:
        for w in list(self.waiters):
            if w.future.done():
                continue
            if w.predicate is None or w.predicate(self.box.facts(entry)):
                w.matched.add(entry.msg.id)
                if len(w.matched) >= w.needed:
                    w.future.set_result(entry)

    def close(self) -> None:
        for queue in list(self.streams):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        for w in self.waiters:
            if not w.future.done():
                w.future.set_exception(ShuttingDown())


HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)


async def envelope(request: web.Request) -> web.Response:
    msg = entry_or_404(request).msg
    return web.json_response(msg.envelope_dict())


async def transcript(request: web.Request) -> web.Response:
    msg = entry_or_404(request).msg
    return web.json_response({"ID": msg.id, "Transcript": msg.transcript})


async def wait(request: web.Request) -> web.Response:
    """Long-poll: the newest message matching ``query`` once ``count`` of them are there."""
    predicate = query_predicate(request)
    timeout = float_param(request, "timeout", 30.0, 0.0, WAIT_MAX_S)
    needed = int_param(request, "count", 1, 1, 10**6)
    box, hub = mailbox(request), request.app[HUB]
    waiter = _Waiter(predicate, needed, hub.loop.create_future())
    hub.waiters.append(waiter)  # first: a message arriving from now on is announced to it
    try:
        present = await matching(box, predicate)
        waiter.matched.update(e.msg.id for e in present)
        if len(waiter.matched) >= needed:
            return await _wait_answer(box, present[0], len(waiter.matched))
        try:
            entry = await asyncio.wait_for(waiter.future, timeout)
        except ShuttingDown:
            raise error_exception(503, "serve is shutting down") from None
        except TimeoutError:
            query = request.query.get("query", "")
            raise error_exception(
                408, f"{len(waiter.matched)} of {needed} message(s) matching {query!r} "
                     f"arrived within {timeout:g} s") from None
    finally:
        hub.waiters.remove(waiter)
    return await _wait_answer(box, entry, len(waiter.matched))


async def _wait_answer(box: Mailbox, entry: Entry, matched: int) -> web.Response:
    body = view.message(entry.msg, await parsed(box, entry))
    return web.json_response(body, headers={"X-Messages-Count": str(matched)})


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events for the web inbox (EventSource reconnects by itself)."""
    hub = request.app[HUB]
    queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_MAX)
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    })
    await resp.prepare(request)
    hub.streams.add(queue)
    try:
        await resp.write(b": connected\n\n")
        while True:
            try:
                frame = await asyncio.wait_for(queue.get(), 15)
            except TimeoutError:
                frame = ": keep-alive\n\n"  # lets proxies and the browser see a live stream
            if frame is None:
                break
            await resp.write(frame.encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        hub.streams.discard(queue)
    return resp


#: No script, no plugin, no form, no remote anything: only images inline in the message
#: (cid: parts rewritten to this server) or data: URIs, and inline styles.
CSP_BLOCKED = ("default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
               "font-src data:; sandbox allow-popups allow-popups-to-escape-sandbox")
CSP_REMOTE_IMAGES = CSP_BLOCKED.replace("img-src 'self' data:", "img-src * data:")
_CID = re.compile(r"""(["'(])cid:([^"')\s]+)""", re.IGNORECASE)


async def view_html(request: web.Request) -> web.Response:
    entry = entry_or_404(request)
    full = await parsed(mailbox(request), entry)
    if not full.html:
        raise error_exception(404, f"message {entry.msg.id} has no HTML part")
    by_cid = {p.content_id: p.part_id for p in (*full.inline, *full.attachments)
              if p.content_id}

    def cid_url(m: re.Match[str]) -> str:
        part_id = by_cid.get(m.group(2))
        if part_id is None:
            return m.group(0)
        return f"{m.group(1)}/api/v1/message/{entry.msg.id}/part/{part_id}"

    html = _CID.sub(cid_url, full.html)
    if request.query.get("embed"):
        # Links open outside the frame, without telling the target where they came from.
        html = '<base target="_blank">' + html
    if request.query.get("remote") == "1":
        csp = CSP_REMOTE_IMAGES
    else:
        # The frame's origin is opaque (sandboxed), so name this server instead of 'self'.
        csp = CSP_BLOCKED.replace("'self'", f"{request.scheme}://{request.host}")
    return web.Response(text=html, content_type="text/html", headers={
        "Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    })


async def view_text(request: web.Request) -> web.Response:
    entry = entry_or_404(request)
    full = await parsed(mailbox(request), entry)
    return web.Response(text=full.text, content_type="text/plain")


def routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/message/{id}/envelope", envelope)
    r.add_get("/api/v1/message/{id}/transcript", transcript)
    r.add_get("/api/v1/wait", wait)
    r.add_get("/api/v1/events", events)
    r.add_get("/view/{id}.html", view_html)
    r.add_get("/view/{id}.txt", view_text)
