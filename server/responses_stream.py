"""``/v1/responses`` streamed: the Responses API's server-sent events (``event: <type>`` and a ``data`` line
whose ``sequence_number`` counts from 0), ending with ``response.completed`` and no ``[DONE]``.

Without tools, text deltas are sent as the engine makes them. With tools, the turn is held back until it
ends (only a whole call can be judged), then sent as its items: a ``function_call`` (arguments in pieces) or
a ``message``. A turn cut by ``max_output_tokens`` still ends in ``response.completed``, whose response says
``status: "incomplete"`` (as vLLM does: agent frameworks treat a ``response.incomplete`` event as a failure).
An error after the stream began is an ``error`` event.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from engine.base import GenerationRequest
from protocol.openai import now
from protocol.responses import OutputFunctionCall, OutputItem, OutputMessage, ResponsesRequest
from server.errors import ApiError, map_errors
from server.services.generation import GenerationService
from server.services.response_bodies import chat_choice
from server.services.responses import response_object
from server.services.tools import Tools
from server.services.usage import TokenUsage
from server.streaming import ARGUMENT_PIECES


class _Events:
    """Numbers the events of one stream."""

    def __init__(self) -> None:
        self.sequence = 0

    def __call__(self, kind: str, **fields: Any) -> str:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _item_events(ev: _Events, index: int, item: OutputItem, live: bool = False) -> list[str]:
    """One finished output item's events (``live``: its text deltas were sent already)."""
    done = item.model_dump()
    if isinstance(item, OutputFunctionCall):
        out = [ev("response.output_item.added", output_index=index,
                  item={**done, "arguments": "", "status": "in_progress"})]
        args = item.arguments
        step = max(1, -(-len(args) // ARGUMENT_PIECES))
        out += [ev("response.function_call_arguments.delta", item_id=item.id, output_index=index,
                   delta=args[k:k + step]) for k in range(0, len(args), step)]
        out.append(ev("response.function_call_arguments.done", item_id=item.id, output_index=index, arguments=args))
        return [*out, ev("response.output_item.done", output_index=index, item=done)]
    text = item.content[0].text if item.content else ""
    where = {"item_id": item.id, "output_index": index, "content_index": 0}
    out = [] if live else [*_open_message(ev, index, item.id),
                           ev("response.output_text.delta", **where, delta=text, logprobs=[])]
    out += [ev("response.output_text.done", **where, text=text, logprobs=[]),
            ev("response.content_part.done", **where, part={"type": "output_text", "text": text, "annotations": []}),
            ev("response.output_item.done", output_index=index, item=done)]
    return out


def _open_message(ev: _Events, index: int, item_id: str) -> list[str]:
    item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
    return [ev("response.output_item.added", output_index=index, item=item),
            ev("response.content_part.added", item_id=item_id, output_index=index, content_index=0,
               part={"type": "output_text", "text": "", "annotations": []})]


async def stream_response(service: GenerationService, greq: GenerationRequest, req: ResponsesRequest,
                          response_id: str, model: str, tools: Tools | None, usage: TokenUsage) -> AsyncIterator[str]:
    """A response's events; its tokens go into ``usage`` (the request's one count) however the stream ends."""
    async with contextlib.aclosing(_events(service, greq, req, response_id, model, tools, usage)) as events:
        async for event in events:
            yield event


async def _events(service: GenerationService, greq: GenerationRequest, req: ResponsesRequest, response_id: str,
                  model: str, tools: Tools | None, usage: TokenUsage) -> AsyncGenerator[str, None]:
    ev, created = _Events(), now()
    start = response_object(req, response_id, model, created=created).model_dump(mode="json", by_alias=True)
    yield ev("response.created", response=start)
    yield ev("response.in_progress", response=start)
    text, finish = "", None
    live_id = f"msg_{response_id.removeprefix('resp_')[:24]}"  # without tools, the message's id from its first delta
    try:
        with map_errors():
            async with contextlib.aclosing(service.stream(greq, response_id, usage)) as chunks:
                async for chunk in chunks:
                    for d in chunk.deltas:
                        if tools is None and d.text:
                            if not text:
                                for event in _open_message(ev, 0, live_id):
                                    yield event
                            yield ev("response.output_text.delta", item_id=live_id, output_index=0,
                                     content_index=0, delta=d.text, logprobs=[])
                        text += d.text
                        finish = d.finish_reason or finish
    except ApiError as exc:
        body = exc.body()["error"]
        yield ev("error", code=body.get("code"), message=body["message"], param=body.get("param"))
        return
    choice = chat_choice(0, text, finish, tools)
    final = response_object(req, response_id, model, created=created, choice=choice, usage=usage)
    for i, item in enumerate(final.output):
        if isinstance(item, OutputMessage) and tools is None:
            item.id = live_id
        for event in _item_events(ev, i, item, live=tools is None):
            yield event
    yield ev("response.completed", response=final.model_dump(mode="json", by_alias=True))
