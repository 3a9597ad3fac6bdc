"""Admission and body size: two ASGI middlewares in front of the app.

``AdmissionMiddleware`` bounds the generation requests in flight (``max_num_seqs`` running plus
``max_queue`` waiting); past it, 429 with Retry-After before any work is done.
``BodyLimitMiddleware`` refuses bodies over ``max_body_bytes`` with a 400 naming the limit.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

from server.access_log import ASGIApp, HttpMiddleware, Receive, Scope, Send
from server.errors import error_body


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": payload})


class Admission:
    """Counts generation requests in flight; the queue is what runs beyond the engine's slots."""

    def __init__(self, running: int, queue: int) -> None:
        self.running = running
        self.capacity = running + queue
        self.active = 0

    @property
    def waiting(self) -> int:
        return max(0, self.active - self.running)


class AdmissionMiddleware:
    """429 (Retry-After) for generation requests beyond running + queued capacity."""

    def __init__(self, app: ASGIApp, admission: Admission, paths: frozenset[str]) -> None:
        self.app = app
        self.admission = admission
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") not in self.paths or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        a = self.admission
        if a.active >= a.capacity:
            await _send_json(send, 429, error_body(
                f"the server is at capacity ({a.running} running, {a.capacity - a.running} queued); retry shortly",
                "rate_limit_error", "queue_full"), [(b"retry-after", b"1")])
            return
        a.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            a.active -= 1


class BodyLimitMiddleware(HttpMiddleware):
    """Refuses request bodies above the limit (by Content-Length, or while reading a chunked body)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        super().__init__(app)
        self.limit = limit

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"the request body is larger than this server's limit of {self.limit} bytes (max_body_bytes)"
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _send_json(send, 400, error_body(message, "invalid_request_error", "request_too_large"), [])
                return
        if not any(name == b"transfer-encoding" for name, _ in scope.get("headers", [])):
            await self.app(scope, receive, send)
            return
        # chunked: read it here (bounded), refuse or replay
        chunks: list[bytes] = []
        seen = 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                await self.app(scope, receive, send)
                return
            chunks.append(msg.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.limit:
                await _send_json(send, 400, error_body(message, "invalid_request_error", "request_too_large"), [])
                return
            if not msg.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
