"""``GET /v1/usage``: usage and cost per key, day and model (an admin: every key; an app key: itself)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from protocol.openai import ErrorResponse
from protocol.usage import UsageEntry, UsageReport, UsageTotals
from server.deps import ServicesDep
from server.errors import NotFound
from server.guards import PrincipalDep

router = APIRouter(prefix="/v1")


@router.get("/usage", response_model=UsageReport,
            responses={code: {"model": ErrorResponse} for code in (400, 404, 503)})
async def get_usage(
    services: ServicesDep, principal: PrincipalDep,
    key: Annotated[str | None, Query(min_length=1, max_length=128, description="One key (an app key: itself).")]
    = None,
    since: Annotated[dt.date | None, Query(description="First day, YYYY-MM-DD (UTC), inclusive.")] = None,
    until: Annotated[dt.date | None, Query(description="Last day, YYYY-MM-DD (UTC), inclusive.")] = None,
    model: Annotated[str | None, Query(min_length=1, max_length=256,
                                       description="One served model (the base or an adapter).")] = None,
) -> UsageReport:
    if not principal.is_admin:
        if key is not None and key != principal.name:  # another app's usage answers as an unknown key
            raise NotFound(f"no usage of a key named {key!r}", param="key", code="key_not_found")
        key = principal.name
    rows = await services.store.usage_rows(key, since.isoformat() if since else None,
                                           until.isoformat() if until else None, model)
    data = [UsageEntry(key=r.key_name, day=r.day, model=r.model or None, requests=r.requests,
                       prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens, plans=r.plans,
                       outcomes=r.outcomes, cost=r.cost)
            for r in rows]
    totals = UsageTotals(**{f: sum(getattr(e, f) for e in data) for f in UsageTotals.model_fields})
    return UsageReport(currency=services.settings.tco_currency, data=data, totals=totals)
