"""``POST /v1/plan``: branch or commit with the model's own foresight."""

from __future__ import annotations

from fastapi import APIRouter, Request

from protocol.openai import ErrorResponse
from protocol.plan import PlanRequest, PlanResponse
from server.cancellation import with_cancellation
from server.deps import MeterDep, PlanningDep
from server.services.generation import TokenUsage

router = APIRouter(prefix="/v1")


@router.post("/plan", response_model=PlanResponse,
             responses={400: {"model": ErrorResponse}, 503: {"model": ErrorResponse}, 504: {"model": ErrorResponse}})
@with_cancellation
async def create_plan(body: PlanRequest, request: Request, planning: PlanningDep, meter: MeterDep) -> PlanResponse:
    usage = TokenUsage()
    try:
        return await planning.run(body, usage)
    finally:
        meter.charge(usage)
