"""``POST /v1/outcomes`` and ``GET /v1/calibration``."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Query, Request

from protocol.openai import ErrorResponse
from protocol.outcomes import CalibrationResponse, DomainCalibrationModel, OutcomeRequest, OutcomeResponse
from server.deps import CalibrationDep, LedgerDep, ModelsDep
from server.guards import PrincipalDep

router = APIRouter(prefix="/v1")
_ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorResponse}, 503: {"model": ErrorResponse}}


@router.post("/outcomes", response_model=OutcomeResponse,
             responses={**_ERRORS, 404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}})
async def create_outcome(body: OutcomeRequest, request: Request, calibration: CalibrationDep,
                         principal: PrincipalDep, ledger: LedgerDep) -> OutcomeResponse:
    # an unknown plan or another key's (404), an outcome already stored (409), a store that is down (503)
    stored = await calibration.record_outcome(body.plan_id, body.success, observation=body.observation,
                                              metadata=body.metadata, replace=body.replace, owner=principal.owner)
    ledger.outcome(principal.name, stored.plan.model)
    request.scope.setdefault("state", {})["model"] = stored.plan.model  # the request counts under it too
    return OutcomeResponse(plan_id=body.plan_id, domain=stored.plan.domain, success=stored.success,
                           replaced=stored.replaced, fidelity=stored.fidelity)


@router.get("/calibration", response_model=CalibrationResponse, responses={**_ERRORS, 404: {"model": ErrorResponse}})
async def get_calibration(calibration: CalibrationDep, principal: PrincipalDep, models: ModelsDep,
                          domain: str | None = Query(default=None, min_length=1, max_length=128,
                                                     description="One domain; default: every domain"),
                          model: str | None = Query(default=None, min_length=1, max_length=256,
                                                    description="The base or an adapter; default: default_model")
                          ) -> CalibrationResponse:
    served = models.resolve(model)
    summaries = await calibration.summaries(domain, principal.may_use, model=served)
    return CalibrationResponse(model=served,
                               domains=[DomainCalibrationModel.model_validate(dataclasses.asdict(s))
                                        for s in summaries])
