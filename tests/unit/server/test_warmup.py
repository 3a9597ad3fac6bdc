"""The warm-up before /ready: what it runs, what /ready says meanwhile, and its failures."""

from __future__ import annotations

import asyncio

import httpx

from engine.base import GenerationRequest
from engine.scripted import ScriptedEngine
from server.app import EXIT_LOAD_FAILED, create_app, services_of
from server.lifecycle import Phase
from server.warmup import WARMUP_TOKENS
from tests.unit.server.conftest import running_app, settings


def is_warmup(r: GenerationRequest) -> bool:
    return r.max_tokens == WARMUP_TOKENS and r.ignore_eos


async def warm_up_started(engine: ScriptedEngine) -> None:
    for _ in range(100):
        if engine.requests:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the warm-up never reached the engine")


async def test_warm_up_runs_a_sampled_logprobs_generation_before_ready_and_is_not_billed() -> None:
    engine = ScriptedEngine()
    async with running_app(engine) as client:
        assert (await client.get("/ready")).status_code == 200
        assert len(engine.requests) == 2 and all(is_warmup(r) for r in engine.requests)
        sampled = engine.requests[1]
        assert sampled.logprobs is not None and sampled.temperature > 0 and sampled.n > 1
        metrics = (await client.get("/metrics")).text
        assert 'foresight_tokens_total{kind="completion"}' not in metrics  # not the clients' traffic
        await client.post("/v1/completions", json={"prompt": "x", "max_tokens": 4})
        assert 'foresight_tokens_total{kind="completion"}' in (await client.get("/metrics")).text


async def test_ready_says_warming_up_until_the_warm_up_ends() -> None:
    engine = ScriptedEngine(lambda prompt, i, req: "ab", delay_s=0.3)
    async with running_app(engine, wait_ready=False) as client:
        await warm_up_started(engine)
        r = await client.get("/ready")
        assert r.status_code == 503 and r.json()["detail"] == "warming up"
        for _ in range(300):
            if (await client.get("/ready")).status_code == 200:
                break
            await asyncio.sleep(0.01)
        assert (await client.get("/ready")).status_code == 200


async def test_no_warm_up_when_turned_off() -> None:
    engine = ScriptedEngine()
    async with running_app(engine, warmup=False) as client:
        assert (await client.get("/ready")).status_code == 200
        assert engine.requests == []


async def test_an_engine_that_dies_in_warm_up_fails_the_start() -> None:
    engine = ScriptedEngine()
    engine.dead = True
    exits: list[int] = []
    app = create_app(settings(), engine, request_exit=exits.append)
    async with app.router.lifespan_context(app):
        for _ in range(200):
            if services_of(app).lifecycle.phase is Phase.FAILED:
                break
            await asyncio.sleep(0.01)
        assert services_of(app).lifecycle.phase is Phase.FAILED
        assert "warm-up" in services_of(app).lifecycle.detail
        assert exits == [EXIT_LOAD_FAILED]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            assert (await client.get("/ready")).status_code == 503


async def test_a_warm_up_that_fails_otherwise_still_serves() -> None:
    def script(prompt: str, index: int, request: GenerationRequest) -> str:
        if is_warmup(request):
            raise RuntimeError("a model that cannot do this")
        return "fine"

    engine = ScriptedEngine(script)
    async with running_app(engine) as client:
        assert (await client.get("/ready")).status_code == 200
        r = await client.post("/v1/completions", json={"prompt": "x", "max_tokens": 4})
        assert r.status_code == 200 and r.json()["choices"][0]["text"] == "fine"


async def test_a_stop_signal_during_warm_up_is_never_undone_by_ready() -> None:
    engine = ScriptedEngine(lambda prompt, i, req: "ab", delay_s=0.2)
    async with running_app(engine, wait_ready=False) as client:
        await warm_up_started(engine)
        services_of(client.app).lifecycle.set(Phase.DRAINING, "signal 15")  # type: ignore[attr-defined]
        await services_of(client.app).loader  # type: ignore[attr-defined]  # warm-up over
        assert services_of(client.app).lifecycle.phase is Phase.DRAINING  # type: ignore[attr-defined]
        assert (await client.get("/ready")).status_code == 503
