"""``POST /v1/responses``: one chat turn in the Responses API's shape. Thin: the work is in services/."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from protocol.openai import ErrorResponse
from protocol.responses import ResponseObject, ResponsesRequest
from server.admission import chat_sequences
from server.cancellation import with_cancellation
from server.deps import GenerationDep, TokensDep
from server.guards import TenancyDep, admission
from server.responses_stream import stream_response
from server.routes.openai import SSE_HEADERS
from server.services.errors import InvalidRequest
from server.services.response_bodies import chat_choice
from server.services.responses import response_object, responses_param, to_chat
from server.services.tools import Tools

router = APIRouter(prefix="/v1")


@router.post("/responses", response_model=ResponseObject,
             responses={400: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
             dependencies=[admission(chat_sequences)])
@with_cancellation
async def create_response(body: ResponsesRequest, request: Request, gen: GenerationDep,
                          usage: TokensDep, tenancy: TenancyDep) -> Response:
    chat = to_chat(body)
    try:
        tools = Tools.of(chat)
        greq = gen.prepare_chat(chat, tools, tenancy)
    except InvalidRequest as exc:  # named as the chat request names it: say it as this request does
        exc.param = responses_param(exc.param)
        raise
    rid = f"resp_{uuid.uuid4().hex}"
    model = usage.model = gen.models.resolve(body.model)
    if body.stream:
        return StreamingResponse(stream_response(gen, greq, body, rid, model, tools, usage),
                                 media_type="text/event-stream", headers=SSE_HEADERS)
    result = await gen.collect(greq, rid, usage=usage)
    seq = result.sequences[0]
    answer = response_object(body, rid, model, choice=chat_choice(0, seq.text, seq.finish_reason, tools),
                             usage=usage)
    return Response(answer.model_dump_json(by_alias=True), media_type="application/json")
