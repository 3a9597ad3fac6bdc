"""``GET /v1/tco``: the cost model's inputs, totals and windowed rates as JSON."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(prefix="/v1")


@router.get("/tco")
async def get_tco(request: Request) -> dict[str, Any]:
    """Cost of ownership so far: hardware amortization and energy, per 1k tokens and per decision."""
    report: dict[str, Any] = request.app.state.monitor.report()
    return report
