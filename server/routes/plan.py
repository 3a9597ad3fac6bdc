"""``POST /v1/plan``: branch or commit with the model's own foresight."""

from __future__ import annotations

from fastapi import APIRouter, Request

from protocol.openai import ErrorResponse
from protocol.plan import PlanRequest, PlanResponse
from server.admission import plan_sequences
from server.cancellation import with_cancellation
from server.deps import PlanningDep, RecorderDep, TokensDep
from server.guards import PrincipalDep, TenancyDep, admission

router = APIRouter(prefix="/v1")


@router.post("/plan", response_model=PlanResponse,
             responses={code: {"model": ErrorResponse} for code in (400, 403, 429, 503, 504)},
             dependencies=[admission(plan_sequences)])
@with_cancellation
async def create_plan(body: PlanRequest, request: Request, planning: PlanningDep, usage: TokensDep,
                      principal: PrincipalDep, recorder: RecorderDep, tenancy: TenancyDep) -> PlanResponse:
    planned = await planning.run(body, usage, principal, tenancy)
    await recorder.record(planned, principal)
    return planned.response
