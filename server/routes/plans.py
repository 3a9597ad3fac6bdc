"""``GET /v1/plans`` and ``GET /v1/plans/{plan_id}``: the plan audit trail (an app key reads its own plans)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from protocol.audit import PlanAudit, PlanPage
from protocol.openai import ErrorResponse
from server.deps import AuditDep
from server.guards import PrincipalDep

router = APIRouter(prefix="/v1")
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 503)}


@router.get("/plans/{plan_id}", response_model=PlanAudit, responses={**_ERRORS, 404: {"model": ErrorResponse}})
async def get_plan(audit: AuditDep, principal: PrincipalDep,
                   plan_id: str = Path(min_length=1, max_length=64)) -> PlanAudit:
    return await audit.get(plan_id, principal)


@router.get("/plans", response_model=PlanPage, responses=_ERRORS)
async def list_plans(
    audit: AuditDep, principal: PrincipalDep,
    domain: str | None = Query(default=None, min_length=1, max_length=128),
    since: Annotated[dt.datetime | None, Query(description="Plans made at or after (ISO 8601).")] = None,
    until: Annotated[dt.datetime | None, Query(description="Plans made before (ISO 8601).")] = None,
    outcome: Literal["success", "failure", "none"] | None = Query(default=None, description=(
        "Only plans whose reported outcome was a success or a failure, or that have none yet.")),
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = Query(default=None, max_length=512, description="`next_cursor` of the previous page."),
) -> PlanPage:
    return await audit.page(principal, domain=domain, since=since, until=until, outcome=outcome, limit=limit,
                            cursor=cursor)
