"""OpenAI-compatible routes: chat completions, completions, models. Thin: the work is in services/."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from protocol.openai import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionRequest,
    CompletionResponse,
    ErrorResponse,
    ModelCard,
    ModelList,
    new_id,
    now,
)
from server.admission import chat_sequences, completion_sequences
from server.cancellation import with_cancellation
from server.deps import GenerationDep, ModelsDep, TokensDep
from server.guards import TenancyDep, admission
from server.services.response_bodies import PLAIN_CHAT, chat_response, completion_response
from server.services.tools import Tools
from server.streaming import stream_chat, stream_completion

router = APIRouter(prefix="/v1")
ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorResponse}, 503: {"model": ErrorResponse},
}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.post("/chat/completions", response_model=ChatCompletionResponse, responses=ERRORS,
             dependencies=[admission(chat_sequences)])
@with_cancellation
async def chat_completions(body: ChatCompletionRequest, request: Request, gen: GenerationDep,
                           usage: TokensDep, tenancy: TenancyDep) -> Response:
    tools = Tools.of(body)
    greq = gen.prepare_chat(body, tools, tenancy)
    rid = new_id("chatcmpl")
    model = usage.model = gen.models.resolve(body.model)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(stream_chat(gen, greq, rid, model, include_usage, usage, tools),
                                 media_type="text/event-stream", headers=SSE_HEADERS)
    result = await gen.collect(greq, rid, usage=usage)
    answer = chat_response(rid, model, result, usage, body.logprobs, tools)
    return Response(answer.model_dump_json(exclude=None if tools else PLAIN_CHAT), media_type="application/json")


@router.post("/completions", response_model=CompletionResponse, responses=ERRORS,
             dependencies=[admission(completion_sequences)])
@with_cancellation
async def completions(body: CompletionRequest, request: Request, gen: GenerationDep, usage: TokensDep,
                      tenancy: TenancyDep) -> Response:
    greqs = gen.prepare_completion(body, tenancy)
    rid = new_id("cmpl")
    model = usage.model = gen.models.resolve(body.model)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(stream_completion(gen, greqs, rid, model, include_usage, usage),
                                 media_type="text/event-stream", headers=SSE_HEADERS)
    results = [await gen.collect(g, f"{rid}-{i}", usage=usage) for i, g in enumerate(greqs)]
    return Response(completion_response(rid, model, results, usage, body.logprobs is not None).model_dump_json(),
                    media_type="application/json")


@router.get("/models", response_model=ModelList, responses=ERRORS)
async def models(served: ModelsDep) -> ModelList:
    info, default = served.engine.info, served.resolve(None)
    base = ModelCard(id=info.name, created=now(), root=info.path, max_model_len=info.max_model_len,
                     quantization=info.quantization, dtype=info.dtype, default=default == info.name,
                     planner=served.planner_defaults(info.name).as_json())
    adapters = [ModelCard(id=name, created=now(), root=path, parent=info.name, max_model_len=info.max_model_len,
                          quantization=info.quantization, dtype=info.dtype, default=default == name,
                          planner=served.planner_defaults(name).as_json())
                for name, path in sorted(served.adapters().items())]
    return ModelList(data=[base, *adapters])
