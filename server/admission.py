"""Admission and body size.

:class:`Admission` counts the engine sequences admitted requests hold (``max_num_seqs`` running plus
``max_queue`` waiting), in all and per key; :func:`server.guards.admitted`, a dependency every generation
route declares, runs after authentication (so it knows whose request it is) and answers 429 with
Retry-After past it, before any work is done.
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
    """Counts the engine sequences that admitted requests hold, in all and per key; the queue is what runs
    beyond the engine's ``running`` slots. A request is admitted while its sequences fit in ``running +
    queue`` (one that alone is larger is admitted when nothing else runs: it can never fit otherwise)."""

    def __init__(self, running: int, queue: int) -> None:
        self.running = running
        self.capacity = running + queue
        self.active = 0
        self.by_key: dict[str, int] = {}

    @property
    def waiting(self) -> int:
        return max(0, self.active - self.running)

    def admit(self, key: str, sequences: int) -> bool:
        if self.active and self.active + sequences > self.capacity:
            return False
        self.active += sequences
        self.by_key[key] = self.by_key.get(key, 0) + sequences
        return True

    def release(self, key: str, sequences: int) -> None:
        self.active -= sequences
        left = self.by_key.get(key, 0) - sequences
        if left > 0:
            self.by_key[key] = left
        else:
            self.by_key.pop(key, None)


def sequences_of(body: Any) -> int:
    """How many engine sequences a generation request holds at once, read from its JSON body (a body the
    route will refuse counts one): ``n`` per prompt (completions may send several prompts), a plan's widest
    round (``width``; lookahead expands ``branch`` candidates side by side)."""
    if not isinstance(body, dict):
        return 1

    def whole(name: str, default: int) -> int:
        value = body.get(name, default)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default

    if "algorithm" in body or "width" in body:  # a plan
        if body.get("algorithm") == "greedy":
            return 1
        return whole("width", 4) * (whole("branch", 2) if body.get("algorithm") == "lookahead" else 1)
    prompt = body.get("prompt")
    prompts = len(prompt) if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int) else 1
    return whole("n", 1) * prompts


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
