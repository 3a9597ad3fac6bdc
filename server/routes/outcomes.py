"""``POST /v1/outcomes`` and ``GET /v1/calibration``."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Query, Request

from server.errors import Conflict, NotFound, StoreDown
from server.protocol.openai import ErrorResponse
from server.protocol.outcomes import CalibrationResponse, DomainCalibrationModel, OutcomeRequest, OutcomeResponse
from server.services.calibration import CalibrationService
from server.store import OutcomeExists, PlanNotFound, StoreUnavailable

router = APIRouter(prefix="/v1")
_ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorResponse}, 503: {"model": ErrorResponse}}


def _service(request: Request) -> CalibrationService:
    service: CalibrationService = request.app.state.calibration
    return service


@router.post("/outcomes", response_model=OutcomeResponse,
             responses={**_ERRORS, 404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}})
async def create_outcome(body: OutcomeRequest, request: Request) -> OutcomeResponse:
    try:
        stored = await _service(request).record_outcome(body.plan_id, body.success, observation=body.observation,
                                                        metadata=body.metadata, replace=body.replace)
    except PlanNotFound as exc:
        raise NotFound(str(exc), param="plan_id", code="plan_not_found") from exc
    except OutcomeExists as exc:
        raise Conflict(str(exc), param="plan_id", code="outcome_exists") from exc
    except StoreUnavailable as exc:
        raise StoreDown(f"the outcome was not stored: {exc}") from exc
    return OutcomeResponse(plan_id=body.plan_id, domain=stored.plan.domain, success=stored.success,
                           replaced=stored.replaced, fidelity=stored.fidelity)


@router.get("/calibration", response_model=CalibrationResponse, responses=_ERRORS)
async def get_calibration(request: Request,
                          domain: str | None = Query(default=None, min_length=1, max_length=128,
                                                     description="One domain; default: every domain")
                          ) -> CalibrationResponse:
    service = _service(request)
    try:
        summaries = await service.summaries(domain)
    except StoreUnavailable as exc:
        raise StoreDown(str(exc)) from exc
    return CalibrationResponse(model=service.model,
                               domains=[DomainCalibrationModel.model_validate(dataclasses.asdict(s))
                                        for s in summaries])
