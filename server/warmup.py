"""Warm-up before ``/ready``: a fresh engine compiles kernels on first use of some paths.

Measured on the reference model with vLLM CPU: with an empty PyTorch inductor cache (a fresh
machine, a new container) the first request that asks for log-probabilities compiled for 16 s on a
2-core CPU, milliseconds afterwards. Two tiny generations before the server says it is ready move
that cost out of the first client's request: one greedy, one sampled (n = 2, top-p, a seed) with
log-probabilities.
"""

from __future__ import annotations

import time

from engine.base import Engine, GenerationRequest

WARMUP_TOKENS = 2


def warmup_requests(prompt_token_ids: list[int]) -> list[GenerationRequest]:
    """The generations a warm-up runs, on ``prompt_token_ids``."""
    return [
        GenerationRequest(prompt_token_ids, max_tokens=WARMUP_TOKENS, temperature=0.0, ignore_eos=True),
        GenerationRequest(prompt_token_ids, n=2, max_tokens=WARMUP_TOKENS, temperature=1.0, top_p=0.9, seed=0,
                          logprobs=1, ignore_eos=True),
    ]


async def warm_up(engine: Engine) -> float:
    """Run :func:`warmup_requests` to the end on a started engine; the seconds it took.

    Raises what the engine raises (:class:`engine.errors.EngineDeadError` when it died)."""
    room = max(1, engine.info.max_model_len - WARMUP_TOKENS - 1)
    ids = engine.encode("warm up")[:room] or [0]
    started = time.perf_counter()
    for i, request in enumerate(warmup_requests(ids)):
        async for _ in engine.generate(request, f"warmup-{i}"):
            pass
    return time.perf_counter() - started
