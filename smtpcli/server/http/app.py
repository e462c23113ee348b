"""The HTTP side of ``serve --http``: an aiohttp application in its own thread and event loop.

Why aiohttp: one maintained package (plus small pure helpers) that is both the server and
the event loop integration, no ASGI server to add (starlette needs uvicorn), and it imports in
about a tenth of a second, only when ``--http`` is given. Why a separate thread: the SMTP
sessions keep their own loop, so a slow HTTP reader, an event stream, or parsing a 30 MB
message for the API never delays an SMTP reply; an exception in a handler is a 500 for that
request only. The two sides share the ``Mailbox`` (locked) and the fault plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from importlib import resources
from typing import Any

from aiohttp import web

from smtpcli.errors import IncompleteError
from smtpcli.server.http import api, live
from smtpcli.server.http.common import MAILBOX, error_exception
from smtpcli.server.runner import ServerState

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
    """Start/stop the HTTP server in a daemon thread; ``url`` once started."""

    def __init__(self, state: ServerState, host: str, port: int) -> None:
        self.state = state
        self.host, self.port = host, port
        self.loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def _start(self) -> None:
        app = build_app(self.state, self.loop)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr,attr-defined]
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    def start(self) -> None:
        """Bind and serve; raises IncompleteError when the port cannot be had."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(self._start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                self.loop.close()
                return
            ready.set()
            self.loop.run_forever()
            self.loop.close()

        self._thread = threading.Thread(target=run, name="smtpcli-serve-http", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            exc = failure[0]
            if isinstance(exc, OSError):
                raise IncompleteError(
                    f"cannot serve HTTP on {self.host}:{self.port}: {exc.strerror or exc}",
                    hint="pick another port with --http HOST:PORT (port 0 picks a free one)",
                ) from None
            raise exc

    def stop(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            return

        async def cleanup() -> None:
            if self._runner is not None:
                with contextlib.suppress(Exception):
                    await self._runner.cleanup()
            self.loop.stop()

        asyncio.run_coroutine_threadsafe(cleanup(), self.loop)
        self._thread.join(10)
