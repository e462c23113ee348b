"""A small real HTTP client (urllib) for the serve --http tests: JSON in, status + body out."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def call(base: str, method: str, path: str, body: Any = None,
         timeout: float = 10.0) -> tuple[int, Any, dict[str, str]]:
    """``(status, JSON or text or bytes, headers)`` of one request to ``base + path``."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw, headers = resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        status, raw, headers = exc.code, exc.read(), dict(exc.headers)
    ctype = headers.get("Content-Type", "")
    if ctype.startswith("application/json"):
        return status, json.loads(raw), headers
    if ctype.startswith("text/"):
        return status, raw.decode("utf-8", "replace"), headers
    return status, raw, headers


def get(base: str, path: str, timeout: float = 10.0) -> Any:
    """GET that must answer 200; returns the body."""
    status, body, _ = call(base, "GET", path, timeout=timeout)
    assert status == 200, (path, status, body)
    return body
