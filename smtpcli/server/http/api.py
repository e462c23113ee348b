"""Mailpit API v1 subset: same paths, same JSON field names, same "ok" answers.

Shapes follow Mailpit's swagger description (``MessagesSummary``, ``Message``, ``Attachment``,
``ChaosTriggers``, ``AppInformation``) and what the npm client ``mailpit-api`` calls.
"""

from __future__ import annotations

import os
import time
from typing import Any

from aiohttp import web

from smtpcli import __version__
from smtpcli.server import message_view as view
from smtpcli.server.faults import Condition, ReplyRule
from smtpcli.server.http.common import (
    MAILBOX,
    entry_or_404,
    fail,
    ids_of,
    int_param,
    json_body,
    mailbox,
    matching,
    ok_text,
    parsed,
    query_predicate,
)
from smtpcli.server.state import ServerState

STATE: web.AppKey[ServerState] = web.AppKey("state", ServerState)
#: Mailpit's chaos trigger names -> serve's fault stages, with Mailpit's default codes.
CHAOS = {"Sender": ("mail", 451), "Recipient": ("rcpt", 451), "Authentication": ("auth", 535)}


def _page(request: web.Request, entries: list[Any] | None) -> dict[str, Any]:
    """Mailpit's ``MessagesSummary`` for ``entries`` (None: the whole mailbox)."""
    box = mailbox(request)
    start = int_param(request, "start", 0, 0, 10**9)
    limit = int_param(request, "limit", 50, 0, 10**6) or 50
    if entries is None:  # the common poll: no copy of a 10,000-message list
        total, unread = box.total, box.unread
        page = box.page(start, limit)
        matched, matched_unread = total, unread
    else:
        total, unread = box.total, box.unread
        page = entries[start : start + limit]
        matched, matched_unread = len(entries), sum(1 for e in entries if not e.read)
    return {
        "total": total, "unread": unread, "count": len(page),
        "messages_count": matched, "messages_unread": matched_unread, "start": start,
        "tags": [], "messages": [box.summary(e) for e in page],
    }


async def info(request: web.Request) -> web.Response:
    box, state = mailbox(request), request.app[STATE]
    s = state.summary
    rejected = sum(n for key, n in s.faults.items() if key.split(":")[1] in ("reply", "greylist"))
    return web.json_response({
        "Version": __version__, "LatestVersion": "",
        "Database": ", ".join(st.name for st in state.stores) or "memory",
        "DatabaseSize": box.bytes,
        "Messages": box.total, "Unread": box.unread, "Tags": {},
        "RuntimeStats": {
            "Uptime": int(time.time() - box.started), "Memory": _rss_bytes(),
            "MessagesDeleted": box.deleted, "SMTPAccepted": s.messages,
            "SMTPAcceptedSize": s.bytes, "SMTPRejected": rejected, "SMTPIgnored": 0,
        },
    })


def _rss_bytes() -> int:
    try:
        with open(f"/proc/{os.getpid()}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


async def webui(request: web.Request) -> web.Response:
    return web.json_response({
        "Label": "smtpcli serve", "SpamAssassin": False, "ChaosEnabled": True,
        "DuplicatesIgnored": False, "HideDeleteAllButton": False,
        "MessageRelay": {"Enabled": False, "SMTPServer": "", "ReturnPath": "",
                         "AllowedRecipients": "", "BlockedRecipients": "",
                         "OverrideFrom": "", "PreserveMessageIDs": False},
    })


async def list_messages(request: web.Request) -> web.Response:
    return web.json_response(_page(request, None))


async def search(request: web.Request) -> web.Response:
    predicate = query_predicate(request, required=True)
    return web.json_response(_page(request, await matching(mailbox(request), predicate)))


async def delete_search(request: web.Request) -> web.Response:
    box = mailbox(request)
    predicate = query_predicate(request, required=True)
    box.delete([e.msg.id for e in await matching(box, predicate)])
    return ok_text()


async def delete_messages(request: web.Request) -> web.Response:
    mailbox(request).delete(ids_of(await json_body(request)))
    return ok_text()


async def set_read(request: web.Request) -> web.Response:
    body = await json_body(request)
    read = body.get("Read", False)
    if not isinstance(read, bool):
        fail(400, "Read must be true or false")
    ids = ids_of(body)
    box = mailbox(request)
    search_text = body.get("Search")
    if ids is None and search_text:
        if not isinstance(search_text, str):
            fail(400, "Search must be a string")
        from smtpcli.server.search import SearchError, compile_query

        try:
            ids = [e.msg.id for e in await matching(box, compile_query(search_text))]
        except SearchError as exc:
            fail(400, str(exc))
    box.set_read(read, ids)
    return ok_text()


async def message(request: web.Request) -> web.Response:
    entry = entry_or_404(request)
    box = mailbox(request)
    full = await parsed(box, entry)
    box.set_read(True, [entry.msg.id])  # as Mailpit: viewing a message marks it read
    return web.json_response(view.message(entry.msg, full))


async def headers(request: web.Request) -> web.Response:
    entry = entry_or_404(request)
    return web.json_response(view.headers_map(await parsed(mailbox(request), entry)))


async def raw(request: web.Request) -> web.Response:
    entry = entry_or_404(request)
    disposition = "attachment" if request.query.get("dl") else "inline"
    return web.Response(
        body=entry.msg.stored, content_type="text/plain", charset="utf-8",
        headers={"Content-Disposition": f'{disposition}; filename="{entry.msg.id}.eml"',
                 "X-Content-Type-Options": "nosniff"},
    )


async def part(request: web.Request) -> web.Response:
    entry = entry_or_404(request)
    found = (await parsed(mailbox(request), entry)).part(request.match_info["part"])
    if found is None:
        fail(404, f"message {entry.msg.id} has no part {request.match_info['part']!r}")
    name = found.filename.replace('"', "") or f"part-{found.part_id}"
    return web.Response(
        body=found.payload, content_type=found.content_type,
        # A captured part is attacker-controlled: downloaded, never sniffed, and if a browser
        # renders it anyway (text/html), it runs in a sandbox with no script.
        headers={"Content-Disposition": f'attachment; filename="{name}"',
                 "X-Content-Type-Options": "nosniff",
                 "Content-Security-Policy": "default-src 'none'; sandbox"},
    )


async def tags(request: web.Request) -> web.Response:
    return web.json_response([])


def _chaos_doc(state: ServerState) -> dict[str, Any]:
    current = state.faults.chaos()
    out = {}
    for name, (stage, default) in CHAOS.items():
        rule = current.get(stage)
        out[name] = ({"ErrorCode": rule.code, "Probability": int(rule.when.pct or 0)}
                     if rule is not None else {"ErrorCode": default, "Probability": 0})
    return out


async def get_chaos(request: web.Request) -> web.Response:
    return web.json_response(_chaos_doc(request.app[STATE]))


async def put_chaos(request: web.Request) -> web.Response:
    """Set Mailpit's three triggers; omitted ones reset to 0% (as Mailpit)."""
    body = await json_body(request)
    rules: dict[str, ReplyRule] = {}
    for name, (stage, default) in CHAOS.items():
        trig = body.get(name) or {}
        if not isinstance(trig, dict):
            fail(400, f"{name} must be an object with ErrorCode and Probability")
        code, pct = trig.get("ErrorCode") or default, trig.get("Probability", 0)
        if not isinstance(code, int) or not 400 <= code <= 599:
            fail(400, "error code must be between 400 and 599")
        if not isinstance(pct, int) or not 0 <= pct <= 100:
            fail(400, "probability must be between 0 and 100")
        enhanced = f"{code // 100}.{'7.8' if stage == 'auth' else '0.0'}"
        rules[stage] = ReplyRule(stage, code, f"{enhanced} Chaos injected by smtpcli serve",
                                 Condition(pct=float(pct)))
    unknown = set(body) - set(CHAOS)
    if unknown:
        fail(400, f"unknown chaos trigger {sorted(unknown)[0]!r}")
    state = request.app[STATE]
    state.faults.set_chaos(rules)
    return web.json_response(_chaos_doc(state))


def routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/info", info)
    r.add_get("/api/v1/webui", webui)
    r.add_get("/api/v1/messages", list_messages)
    r.add_delete("/api/v1/messages", delete_messages)
    r.add_put("/api/v1/messages", set_read)
    r.add_get("/api/v1/search", search)
    r.add_delete("/api/v1/search", delete_search)
    r.add_get("/api/v1/message/{id}", message)
    r.add_get("/api/v1/message/{id}/headers", headers)
    r.add_get("/api/v1/message/{id}/raw", raw)
    r.add_get("/api/v1/message/{id}/part/{part}", part)
    r.add_get("/api/v1/tags", tags)
    r.add_get("/api/v1/chaos", get_chaos)
    r.add_put("/api/v1/chaos", put_chaos)


__all__ = ["MAILBOX", "STATE", "routes"]
