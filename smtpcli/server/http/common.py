"""Shared bits of the HTTP handlers: JSON errors (Mailpit's ``{"Error": ...}``), lookups."""

from __future__ import annotations

import asyncio
import json
from typing import Any, NoReturn

from aiohttp import web

from smtpcli.server.mailbox import Entry, Mailbox
from smtpcli.server.message_view import ParsedMessage
from smtpcli.server.search import Facts, Predicate, SearchError, compile_query

MAILBOX: web.AppKey[Mailbox] = web.AppKey("mailbox", Mailbox)


_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest, 404: web.HTTPNotFound, 408: web.HTTPRequestTimeout,
    500: web.HTTPInternalServerError, 503: web.HTTPServiceUnavailable,
}


def error_exception(status: int, message: str) -> web.HTTPException:
    """An HTTP error whose body is Mailpit's JSON error shape."""
    return _ERRORS[status](text=json.dumps({"Error": message}), content_type="application/json")


def fail(status: int, message: str) -> NoReturn:
    raise error_exception(status, message)


def mailbox(request: web.Request) -> Mailbox:
    return request.app[MAILBOX]


def entry_or_404(request: web.Request) -> Entry:
    msg_id = request.match_info["id"]
    entry = mailbox(request).get(msg_id)
    if entry is None:
        fail(404, f"message {msg_id!r} not found")
    return entry


def query_predicate(request: web.Request, required: bool = False) -> Predicate | None:
    query = request.query.get("query", "").strip()
    if not query:
        if required:
            fail(400, "give a search query: ?query=...")
        return None
    try:
        return compile_query(query)
    except SearchError as exc:
        fail(400, str(exc))


#: Messages parsed for search facts between two turns of the event loop: a first search over
#: 10,000 never-parsed messages takes about a second, which must not stall the SMTP sessions.
PARSE_SLICE = 100


#: Messages bigger than this are parsed in a worker thread: a 30 MB message takes the event
#: loop (and so every SMTP session) away for too long.
BIG = 256 * 1024


async def parsed(box: Mailbox, entry: Entry) -> ParsedMessage:
    """The full parse of a message, off the loop when it is big."""
    if entry.msg.size > BIG:
        return await asyncio.to_thread(box.parsed, entry)
    return box.parsed(entry)


async def facts(box: Mailbox, entry: Entry) -> Facts:
    """Search facts (and the list summary) of a message, off the loop when it is big."""
    if entry.facts is None and entry.msg.size > BIG:
        await asyncio.to_thread(box.facts, entry)
    return box.facts(entry)


async def matching(box: Mailbox, predicate: Predicate | None) -> list[Entry]:
    """Entries (newest first) the predicate accepts, in one pass; messages not parsed yet are
    parsed on the way, yielding to the loop every ``PARSE_SLICE`` of them."""
    entries = box.newest_first()
    if predicate is None:
        return entries
    box.keep_warm = True
    out: list[Entry] = []
    fresh = 0
    for e in entries:
        found = e.facts
        if found is None:
            found = await facts(box, e)
            fresh += 1
            if fresh % PARSE_SLICE == 0:
                await asyncio.sleep(0)
        if predicate(found):
            out.append(e)
    return out


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name, "")
    if raw == "":
        return default
    if not raw.isdecimal() or not low <= int(raw) <= high:
        fail(400, f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def float_param(request: web.Request, name: str, default: float, low: float, high: float) -> float:
    raw = request.query.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # NaN fails too
        fail(400, f"{name} must be a number from {low:g} to {high:g}")
    return value


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object ({} when there is no body); 400 when it is not one."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        fail(400, f"the request body is not JSON: {exc}")
    if not isinstance(data, dict):
        fail(400, "the request body must be a JSON object")
    return data


def ids_of(body: dict[str, Any]) -> list[str] | None:
    ids = body.get("IDs")
    if ids is None:
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        fail(400, "IDs must be a list of message IDs")
    return ids


def ok_text() -> web.Response:
    """Mailpit answers changes with a plain-text "ok"."""
    return web.Response(text="ok", content_type="text/plain")
