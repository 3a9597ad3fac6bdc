"""``GET /v1/tco``: the cost model's inputs, totals and windowed rates as JSON."""

from __future__ import annotations

from fastapi import APIRouter

from protocol.tco import TcoReport
from server.deps import MonitorDep

router = APIRouter(prefix="/v1")


@router.get("/tco", response_model=TcoReport)
async def get_tco(monitor: MonitorDep) -> TcoReport:
    """Cost of ownership so far: hardware amortization and energy, per 1k tokens and per decision."""
    return TcoReport.model_validate(monitor.report())
