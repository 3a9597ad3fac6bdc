"""A client that leaves aborts its request's engine work, on every route that generates: the app is driven as a
server drives it (ASGI), and the connection sends ``http.disconnect`` while the engine is still writing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from engine.scripted import ScriptedEngine
from server.app import create_app, services_of
from server.lifecycle import Phase
from tests.unit.server.conftest import settings

LONG = "y" * 400  # one token a character; 5 ms a chunk: ~2 s to write it all


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "go"}], "max_tokens": 400}),
    ("/v1/completions", {"prompt": "go", "max_tokens": 400}),
    ("/v1/responses", {"input": "go", "max_output_tokens": 400}),
    ("/v1/plan", {"prompt": "go", "algorithm": "greedy", "max_tokens_per_turn": 400}),
])
async def test_a_client_that_leaves_aborts_the_generation(path: str, body: dict[str, Any]) -> None:
    engine = ScriptedEngine(lambda p, i, r: LONG, delay_s=0.005, max_model_len=2048)
    app = create_app(settings(), engine)
    sent: list[dict[str, Any]] = []
    left = asyncio.Event()
    payload = json.dumps(body).encode()
    messages = [{"type": "http.request", "body": payload, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await left.wait()  # the connection stays open until the client leaves
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000)}
    async with app.router.lifespan_context(app):
        for _ in range(200):
            if services_of(app).lifecycle.phase is Phase.READY:
                break
            await asyncio.sleep(0.01)
        warm = len(engine.requests)
        handling = asyncio.create_task(app(scope, receive, send))
        for _ in range(400):  # until the engine is writing
            if len(engine.requests) > warm and engine.running:
                break
            await asyncio.sleep(0.005)
        assert engine.running, "the request never reached the engine"
        left.set()
        await asyncio.wait_for(handling, 5)
        assert not engine.running
        assert engine.aborted, "the generation ran on after its client left"
        statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
        assert statuses in ([], [499])  # nobody reads it; where one is written, it says the client left
