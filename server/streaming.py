"""Server-sent events for streamed chat and text completions, ending in ``data: [DONE]``."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from server.engine.base import GenerationRequest
from server.errors import ApiError
from server.protocol.openai import now
from server.services.formatting import chat_logprobs, completion_logprobs
from server.services.generation import GenerationService

log = logging.getLogger("foresight.streaming")
DONE = "data: [DONE]\n\n"


def sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def stream_chat(service: GenerationService, greq: GenerationRequest, request_id: str,
                      model: str, include_usage: bool) -> AsyncIterator[str]:
    created = now()
    base = {"id": request_id, "object": "chat.completion.chunk", "created": created, "model": model}
    prompt_tokens, completion = len(greq.prompt_token_ids), 0
    for i in range(greq.n):
        yield sse({**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                        "finish_reason": None}]})
    try:
        async for chunk in service.stream(greq, request_id):
            prompt_tokens = chunk.prompt_tokens
            for d in chunk.deltas:
                completion += d.num_tokens
                if not d.text and d.finish_reason is None:
                    continue
                choice: dict[str, Any] = {"index": d.index, "delta": {"content": d.text} if d.text else {},
                                          "finish_reason": d.finish_reason}
                if d.logprobs is not None:
                    choice["logprobs"] = chat_logprobs(d.logprobs).model_dump()
                yield sse({**base, "choices": [choice]})
    except ApiError as exc:
        yield sse(exc.body())
        yield DONE
        return
    if include_usage:
        yield sse({**base, "choices": [], "usage": _usage(prompt_tokens, completion)})
    yield DONE


async def stream_completion(service: GenerationService, greqs: list[GenerationRequest], request_id: str,
                            model: str, include_usage: bool) -> AsyncIterator[str]:
    created = now()
    base = {"id": request_id, "object": "text_completion", "created": created, "model": model}
    prompt_total, completion = 0, 0
    try:
        for p, greq in enumerate(greqs):
            prompt_tokens = len(greq.prompt_token_ids)
            async for chunk in service.stream(greq, f"{request_id}-{p}"):
                prompt_tokens = chunk.prompt_tokens
                for d in chunk.deltas:
                    completion += d.num_tokens
                    if not d.text and d.finish_reason is None:
                        continue
                    choice: dict[str, Any] = {"index": p * greq.n + d.index, "text": d.text,
                                              "finish_reason": d.finish_reason, "logprobs": None}
                    if d.logprobs is not None:
                        choice["logprobs"] = completion_logprobs(d.logprobs, 0).model_dump()
                    yield sse({**base, "choices": [choice]})
            prompt_total += prompt_tokens
    except ApiError as exc:
        yield sse(exc.body())
        yield DONE
        return
    if include_usage:
        yield sse({**base, "choices": [], "usage": _usage(prompt_total, completion)})
    yield DONE
