"""``POST /v1/plan``: branch or commit with the model's own foresight."""

from __future__ import annotations

from fastapi import APIRouter, Request

from server.deps import GenerationDep
from server.protocol.openai import ErrorResponse
from server.protocol.plan import PlanRequest, PlanResponse

router = APIRouter(prefix="/v1")


@router.post("/plan", response_model=PlanResponse,
             responses={400: {"model": ErrorResponse}, 503: {"model": ErrorResponse}, 504: {"model": ErrorResponse}})
async def create_plan(body: PlanRequest, request: Request, _gen: GenerationDep) -> PlanResponse:
    response: PlanResponse = await request.app.state.planning.run(body)
    return response
