"""A client of ``serve --http`` (or of Mailpit, for the calls they share), on urllib.

Used by ``smtpcli mailbox``; the standard library is enough for a handful of JSON requests,
so no HTTP package is loaded for it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from smtpcli.errors import IncompleteError, UsageError


class WaitTimeout(Exception):
    """``GET /api/v1/wait`` answered 408: not enough matching messages in time."""


@dataclass
class MailboxClient:
    base: str
    timeout: float = 10.0

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"--http {self.base!r}: give the server's URL, "
                             "for example http://127.0.0.1:8025")
        self.base = self.base.rstrip("/")

    def _send(self, method: str, path: str, body: Any = None,
              timeout: float | None = None) -> tuple[bytes, Any]:
        """Body and headers of a 200 answer; errors mapped to smtpcli's exceptions."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        where = f"{method} {self.base}{path}"
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                return resp.read(), resp.headers
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            try:
                detail = json.loads(detail).get("Error", detail)
            except (ValueError, AttributeError):
                pass
            if exc.code == 408:
                raise WaitTimeout(detail) from None
            if exc.code in (400, 404):
                raise UsageError(f"{where}: {exc.code} {detail}".strip()) from None
            raise IncompleteError(f"{where}: HTTP {exc.code} {detail}".strip()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise IncompleteError(
                f"cannot reach {self.base}: {reason}",
                hint="is `smtpcli serve --http` running there?",
            ) from None

    def request(self, method: str, path: str, body: Any = None) -> Any:
        payload, headers = self._send(method, path, body)
        if headers.get("Content-Type", "").startswith("application/json"):
            return json.loads(payload)
        return payload.decode("utf-8", "replace")

    def messages(self, query: str | None, limit: int) -> dict[str, Any]:
        if query:
            qs = urllib.parse.urlencode({"query": query, "limit": limit})
            result: dict[str, Any] = self.request("GET", f"/api/v1/search?{qs}")
        else:
            result = self.request("GET", f"/api/v1/messages?limit={limit}")
        return result

    def message(self, msg_id: str) -> dict[str, Any]:
        quoted = urllib.parse.quote(msg_id, safe="")
        msg: dict[str, Any] = self.request("GET", f"/api/v1/message/{quoted}")
        try:
            msg["Envelope"] = self.request("GET", f"/api/v1/message/{quoted}/envelope")
        except UsageError:  # Mailpit has no envelope route: show the message without it
            msg["Envelope"] = None
        return msg

    def raw(self, msg_id: str) -> bytes:
        quoted = urllib.parse.quote(msg_id, safe="")
        return self._send("GET", f"/api/v1/message/{quoted}/raw")[0]

    def wait(self, query: str | None, timeout: float, count: int) -> tuple[dict[str, Any], int]:
        """The newest matching message once ``count`` match, and how many do; raises
        WaitTimeout (the server's 408)."""
        params = {"timeout": f"{timeout:g}", "count": str(count)}
        if query:
            params["query"] = query
        path = "/api/v1/wait?" + urllib.parse.urlencode(params)
        payload, headers = self._send("GET", path, timeout=timeout + self.timeout)
        return json.loads(payload), int(headers.get("X-Messages-Count", "1"))

    def clear(self, query: str | None) -> int:
        """Delete all messages (or those matching ``query``); returns how many went."""
        before = self.messages(query, 1)["messages_count"]
        if query:
            self.request("DELETE", "/api/v1/search?" + urllib.parse.urlencode({"query": query}))
        else:
            self.request("DELETE", "/api/v1/messages")
        return int(before)
