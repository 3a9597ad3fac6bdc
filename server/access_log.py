"""Request ids and access records: two middlewares, one job each.

``RequestIdMiddleware`` gives every request an id (the client's ``X-Request-ID`` when it is
printable and at most 128 characters, else a new one) and returns it as a header.
``AccessLogMiddleware`` writes one record per request: id, route, status, latency and the tokens
its route reported (``scope["state"]["usage"]``, see :func:`server.deps.request_tokens`) — never prompt or
completion text, never headers (API keys).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("foresight.access")
PROBES = frozenset({"/health", "/ready", "/metrics"})


def request_id(scope: Scope) -> str:
    """The request's id (set by :class:`RequestIdMiddleware`)."""
    rid: str = scope.get("state", {}).get("request_id") or ""
    return rid


def _incoming_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id" and 0 < len(value) <= 128:
            text: str = value.decode("latin-1")
            if text.isprintable():
                return text
    return uuid.uuid4().hex


class StatusRecorder:
    """Wraps ``send`` to remember the response status (500 until one is sent)."""

    def __init__(self, send: Send) -> None:
        self.code = 500
        self._send = send

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.code = int(message["status"])
        await self._send(message)


class HttpMiddleware:
    """An ASGI middleware for HTTP requests: anything else (lifespan, websockets) passes straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def route_path(scope: Scope) -> str:
    """The route template the request matched (``/v1/plans/{id}``, not the raw path), or ``unmatched``."""
    return getattr(scope.get("route"), "path", None) or "unmatched"


class RequestIdMiddleware(HttpMiddleware):
    """Every request gets an id, echoed as ``X-Request-ID``."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = _incoming_id(scope)
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


class AccessLogMiddleware(HttpMiddleware):
    """One access record per request, written when its last byte is sent (or it fails)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = StatusRecorder(send)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, status)
        finally:
            path = route_path(scope)
            usage: dict[str, int] = scope.get("state", {}).get("usage") or {}
            level = logging.DEBUG if path in PROBES else logging.INFO
            access_log.log(level, "%s %s %d", scope.get("method", ""), path, status.code, extra={
                "request_id": request_id(scope), "method": scope.get("method"), "route": path,
                "status": status.code, "latency_s": round(time.perf_counter() - started, 6), **usage,
            })
