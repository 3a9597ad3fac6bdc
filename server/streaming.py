"""Server-sent events for streamed chat and text completions, ending in ``data: [DONE]``."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from engine.base import GenerationRequest
from protocol.openai import now
from server.errors import ApiError, map_errors
from server.services.generation import GenerationService
from server.services.response_bodies import chat_choice, chat_logprobs, completion_logprobs
from server.services.tools import Tools
from server.services.usage import TokenUsage

log = logging.getLogger("foresight.streaming")
DONE = "data: [DONE]\n\n"


def sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


async def stream_chat(service: GenerationService, greq: GenerationRequest, request_id: str,
                      model: str, include_usage: bool, usage: TokenUsage,
                      tools: Tools | None = None) -> AsyncIterator[str]:
    """A chat completion's SSE events; its tokens go into ``usage`` (the request's one count, which its usage
    chunk is rendered from) however the stream ends. With
    ``tools``, each choice's turn is held back and sent as OpenAI sends a call once it is whole (a call
    can only be judged whole), then its finish chunk with the turn's foresight."""
    async with contextlib.aclosing(_chat_events(service, greq, request_id, model, include_usage, usage,
                                                tools)) as events:
        async for event in events:
            yield event


async def _chat_events(service: GenerationService, greq: GenerationRequest, request_id: str, model: str,
                       include_usage: bool, usage: TokenUsage, tools: Tools | None) -> AsyncGenerator[str, None]:
    created = now()
    base = {"id": request_id, "object": "chat.completion.chunk", "created": created, "model": model}
    held: dict[int, list[str]] = {i: [] for i in range(greq.n)}  # with tools: each choice's text so far
    for i in range(greq.n):
        yield sse({**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                        "finish_reason": None}]})
    try:
        with map_errors():
            async with contextlib.aclosing(service.stream(greq, request_id, usage)) as chunks:
                async for chunk in chunks:
                    for d in chunk.deltas:
                        if tools is not None:
                            held[d.index].append(d.text)
                            if d.finish_reason is not None:
                                for event in _tool_events(base, d.index, "".join(held[d.index]), d.finish_reason,
                                                          tools):
                                    yield event
                            continue
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
        yield sse({**base, "choices": [], "usage": usage.openai().model_dump()})
    yield DONE


ARGUMENT_PIECES = 2  # a call's arguments arrive in this many chunks, as OpenAI streams them


def _tool_events(base: dict[str, Any], index: int, text: str, finish_reason: str,
                 tools: Tools) -> list[str]:
    """One whole turn as OpenAI streams it: the call (id and name, then its arguments in pieces) or the
    content, then the finish chunk carrying the foresight."""
    choice = chat_choice(index, text, finish_reason, tools)
    events = []
    for call in choice.message.tool_calls or []:
        head = {"index": 0, "id": call.id, "type": "function",
                "function": {"name": call.function.name, "arguments": ""}}
        events.append(sse({**base, "choices": [{"index": index, "delta": {"tool_calls": [head]},
                                                "finish_reason": None}]}))
        args = call.function.arguments
        step = max(1, -(-len(args) // ARGUMENT_PIECES))
        for k in range(0, len(args), step):
            piece = {"index": 0, "function": {"arguments": args[k:k + step]}}
            events.append(sse({**base, "choices": [{"index": index, "delta": {"tool_calls": [piece]},
                                                    "finish_reason": None}]}))
    if choice.message.content:
        events.append(sse({**base, "choices": [{"index": index, "delta": {"content": choice.message.content},
                                                "finish_reason": None}]}))
    foresight = choice.foresight.model_dump() if choice.foresight else None
    events.append(sse({**base, "choices": [{"index": index, "delta": {}, "finish_reason": choice.finish_reason,
                                            "foresight": foresight}]}))
    return events


async def stream_completion(service: GenerationService, greqs: list[GenerationRequest], request_id: str,
                            model: str, include_usage: bool, usage: TokenUsage) -> AsyncIterator[str]:
    """A text completion's SSE events; its tokens go into ``usage`` however the stream ends."""
    async with contextlib.aclosing(_completion_events(service, greqs, request_id, model, include_usage,
                                                      usage)) as events:
        async for event in events:
            yield event


async def _completion_events(service: GenerationService, greqs: list[GenerationRequest], request_id: str,
                             model: str, include_usage: bool, usage: TokenUsage) -> AsyncGenerator[str, None]:
    created = now()
    base = {"id": request_id, "object": "text_completion", "created": created, "model": model}
    try:
        for p, greq in enumerate(greqs):
            with map_errors():
                async with contextlib.aclosing(service.stream(greq, f"{request_id}-{p}", usage)) as chunks:
                    async for chunk in chunks:
                        for d in chunk.deltas:
                            if not d.text and d.finish_reason is None:
                                continue
                            choice: dict[str, Any] = {"index": p * greq.n + d.index, "text": d.text,
                                                      "finish_reason": d.finish_reason, "logprobs": None}
                            if d.logprobs is not None:
                                choice["logprobs"] = completion_logprobs(d.logprobs, 0).model_dump()
                            yield sse({**base, "choices": [choice]})
    except ApiError as exc:
        yield sse(exc.body())
        yield DONE
        return
    if include_usage:
        yield sse({**base, "choices": [], "usage": usage.openai().model_dump()})
    yield DONE
