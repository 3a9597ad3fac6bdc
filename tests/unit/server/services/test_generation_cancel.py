"""Cancelling a generation stops it, even when the cancel lands as a chunk arrives.

On Python 3.11 ``asyncio.wait_for`` returns the inner result instead of raising when a cancel
arrives after the inner future finished; a per-chunk ``wait_for`` therefore swallowed client
disconnects that landed between two chunks, and the whole request was generated (CI caught it
as ``test_non_streaming_client_disconnect_aborts``)."""

from __future__ import annotations

import asyncio

from engine.base import GenerationRequest
from engine.scripted import ScriptedEngine
from server.services.generation import GenerationService
from tests.unit.server.conftest import running_app, settings

LENGTH = 4000  # characters = tokens, one chunk each; without a sleep between chunks


def long_request() -> GenerationRequest:
    return GenerationRequest(prompt_token_ids=[ord("x")], max_tokens=LENGTH, n=1)


async def test_cancelling_a_collect_aborts_the_generation_whose_chunks_are_always_ready() -> None:
    """What a client that leaves does to a route (``with_cancellation`` cancels its handler)."""
    engine = ScriptedEngine(lambda prompt, i, req: "y" * LENGTH)
    service = GenerationService(engine, settings())
    for attempt in range(30):  # the cancel lands at a random point of the chunk cycle
        before = len(engine.requests)
        rid = f"r{attempt}"
        task = asyncio.create_task(service.collect(long_request(), rid))
        for _ in range(3 + attempt % 5):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()
        assert len(engine.requests) == before + 1
        assert rid in engine.aborted, f"attempt {attempt}: the generation ran to its end instead of aborting"
        assert not engine.running


async def test_cancelling_a_stream_consumer_aborts_the_generation() -> None:
    engine = ScriptedEngine(lambda prompt, i, req: "y" * LENGTH)
    service = GenerationService(engine, settings())
    seen: list[int] = []

    async def consume(rid: str) -> None:
        async for chunk in service.stream(long_request(), rid):
            seen.append(len(chunk.deltas))

    for attempt in range(30):
        seen.clear()
        task = asyncio.create_task(consume(f"s{attempt}"))
        for _ in range(3 + attempt % 5):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert f"s{attempt}" in engine.aborted, f"attempt {attempt}: cancel swallowed after {len(seen)} chunks"
        assert len(seen) < LENGTH


async def test_a_generation_past_its_deadline_is_aborted_with_504() -> None:
    engine = ScriptedEngine(lambda prompt, i, req: "y" * 200, delay_s=0.01)  # ~2 s in all
    async with running_app(engine, request_timeout_s=0.2) as client:
        r = await client.post("/v1/completions", json={"prompt": "x", "max_tokens": 200})
        assert r.status_code == 504, r.text
        assert "request_timeout_s" in r.json()["error"]["message"]
        assert len(engine.aborted) == 1 and not engine.running
        fast = await client.post("/v1/completions", json={"prompt": "x", "max_tokens": 5})
        assert fast.status_code == 200  # the deadline is per request
