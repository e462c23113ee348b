"""The HTTP side of ``serve --http``: an aiohttp application on serve's own event loop.

Why aiohttp: one maintained package that is both the HTTP server and its asyncio integration,
so it runs on the loop the SMTP sessions already use; starlette would need an ASGI server
(uvicorn) on top. It is imported only when ``--http`` is given.

Why the same loop and not a thread of its own: CPython's GIL. A second thread doing CPU work
(parsing messages for a search) makes the SMTP loop wait for the GIL after every socket
call; measured, that cost 30-60 % of the receive rate. On one loop, HTTP work runs between
SMTP callbacks in short slices, big messages are parsed in a worker thread, and an exception
in a handler is a 500 for that request only: neither side can take the other down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from importlib import resources
from typing import Any

from aiohttp import web

from smtpcli.errors import IncompleteError
from smtpcli.server.http import api, live
from smtpcli.server.http.common import MAILBOX, error_exception
from smtpcli.server.state import ServerState

_STATIC = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html"}


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every error as Mailpit's JSON error shape; a crash is a 500 for this request only."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        return web.Response(status=exc.status, content_type="application/json",
                            text=json.dumps({"Error": exc.reason}))
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception as exc:
        state = request.app[api.STATE]
        state.emit("error", where="http", message=f"{request.method} {request.path}: "
                                                  f"{type(exc).__name__}: {exc}")
        return web.Response(status=500, content_type="application/json",
                            text=json.dumps({"Error": f"{type(exc).__name__}: {exc}"}))


async def _static(request: web.Request) -> web.Response:
    name = request.match_info.get("name", "index.html")
    if name not in _STATIC:
        raise error_exception(404, f"no such file {name!r}")
    body = resources.files("smtpcli.server.http").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=_STATIC[name], charset="utf-8", headers={
        # The inbox itself runs only its own script; message HTML lives in a sandboxed frame.
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                   "frame-src 'self'; object-src 'none'; base-uri 'none'",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache",
    })


def build_app(state: ServerState, loop: asyncio.AbstractEventLoop) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=1024 * 1024)
    app[MAILBOX] = state.mailbox
    app[api.STATE] = state
    hub = live.Hub(state.mailbox, loop)
    app[live.HUB] = hub
    state.mailbox.subscribe(hub.listener)

    async def on_shutdown(_app: web.Application) -> None:
        hub.close()

    app.on_shutdown.append(on_shutdown)
    api.routes(app)
    live.routes(app)
    app.router.add_get("/", _static)
    app.router.add_get("/static/{name}", _static)
    return app


class HttpSide:
    """The HTTP server on serve's event loop: ``await start()``, ``url``, ``await stop()``."""

    def __init__(self, state: ServerState, host: str, port: int) -> None:
        self.state = state
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def start(self) -> None:
        """Bind and serve; raises IncompleteError when the port cannot be had."""
        app = build_app(self.state, asyncio.get_running_loop())
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise IncompleteError(
                f"cannot serve HTTP on {self.host}:{self.port}: {exc.strerror or exc}",
                hint="pick another port with --http HOST:PORT (port 0 picks a free one)",
            ) from None
        sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr,attr-defined]
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            with contextlib.suppress(Exception):
                await runner.cleanup()
