"""The engine behind the planner's :class:`planner.search.Sampler` protocol.

The one place where engine and planner meet: the server plans through it, and so
do the reference evaluation, quantization's evaluation and the benches.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from engine.base import Engine, GenerationRequest
from planner.search import Sample, SampleBatch

Run = Callable[[GenerationRequest, str], Awaitable[SampleBatch]]
"""How one engine request runs to its end: the server passes one that meters, times out and aborts."""


async def collect(engine: Engine, request: GenerationRequest, request_id: str) -> SampleBatch:
    """Run ``request`` to its end on ``engine``; aborted there if the caller is cancelled first."""
    texts = [""] * request.n
    tokens = [0] * request.n
    reasons: list[str | None] = [None] * request.n
    prompt_tokens = len(request.prompt_token_ids)
    cached = 0
    finished = False
    try:
        async for chunk in engine.generate(request, request_id):
            prompt_tokens = chunk.prompt_tokens
            cached = chunk.cached_tokens if chunk.cached_tokens is not None else cached
            for d in chunk.deltas:
                texts[d.index] += d.text
                tokens[d.index] += d.num_tokens
                if d.finish_reason is not None:
                    reasons[d.index] = d.finish_reason
            finished = chunk.finished
    finally:
        if not finished:  # shielded: a cancelled caller still aborts its request
            await asyncio.shield(engine.abort(request_id))
    return SampleBatch([Sample(t, k, r) for t, k, r in zip(texts, tokens, reasons, strict=True)], prompt_tokens,
                       cached)


@dataclass
class EngineSampler:
    """Samples n continuations of one prompt in one engine call; stop strings stay in the output.

    ``add_special_tokens``: False for a prompt the chat template rendered (it has its own BOS).
    ``run``: how a request runs (default: straight on the engine, see :func:`collect`).
    """

    engine: Engine
    add_special_tokens: bool = True
    run: Run | None = None

    async def sample(self, prompt: str, n: int, *, stop: Sequence[str], max_tokens: int, temperature: float,
                     top_p: float = 1.0, seed: int | None = None) -> SampleBatch:
        ids = self.engine.encode(prompt, add_special_tokens=self.add_special_tokens)
        room = self.engine.info.max_model_len - len(ids)
        if room < 1:
            return SampleBatch([Sample("", 0, "length") for _ in range(n)], len(ids))
        request = GenerationRequest(ids, n=n, max_tokens=min(max_tokens, room), temperature=temperature, top_p=top_p,
                                    seed=seed, stop=tuple(stop), include_stop_str_in_output=True)
        request_id = f"plan-{uuid.uuid4().hex}"
        if self.run is not None:
            return await self.run(request, request_id)
        return await collect(self.engine, request, request_id)


@asynccontextmanager
async def local_sampler(model: str | Path, dtype: str = "float32") -> AsyncIterator[EngineSampler]:
    """The planner's sampler over a vLLM engine loaded here on ``model`` (benches, offline evaluation),
    closed on leaving."""
    from engine import open_engine

    async with open_engine(model, dtype=dtype, log_stats=False) as engine:
        yield EngineSampler(engine)
