"""``AsyncForesight``: the asyncio client."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel

from foresight_client import _request as rq
from protocol.outcomes import CalibrationResponse, OutcomeResponse
from protocol.plan import PlanResponse

M = TypeVar("M", bound=BaseModel)


class AsyncForesight:
    """Plan, report outcomes and read calibration on a Foresight Serve server (chat and completions: use
    the official ``openai`` client against the same URL)."""

    def __init__(self, base_url: str = rq.DEFAULT_URL, api_key: str | None = None, *,
                 timeout: float = rq.DEFAULT_TIMEOUT_S, http_client: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._owned = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self._headers = rq.headers(api_key)

    async def _send(self, call: rq.Call, model: type[M]) -> M:
        try:
            response = await self._http.request(call.method, f"{self.base_url}{call.path}", json=call.json,
                                                params=call.params, headers=self._headers)
        except httpx.HTTPError as exc:
            raise rq.unreachable(self.base_url, exc) from exc
        return rq.read(response, model)

    async def plan(self, prompt: str | None = None, *, messages: list[dict[str, Any]] | None = None,
             **params: Any) -> PlanResponse:
        """``POST /v1/plan``: ``params`` are the plan's parameters (``algorithm``, ``width``,
        ``budget={...}``, ``domain``, …; docs/planning.md), checked before anything is sent."""
        return await self._send(rq.plan_call(prompt, messages, params), PlanResponse)

    async def report_outcome(self, plan_id: str, success: bool, *, observation: str | None = None,
                       metadata: dict[str, Any] | None = None, replace: bool = False) -> OutcomeResponse:
        """``POST /v1/outcomes``: what really happened after acting on ``plan_id``."""
        return await self._send(rq.outcome_call(plan_id, success, observation, metadata, replace), OutcomeResponse)

    async def calibration(self, domain: str | None = None, model: str | None = None) -> CalibrationResponse:
        """``GET /v1/calibration``: every domain's (or one domain's) calibration, of ``model`` (the base or an
        adapter; default the server's default model)."""
        return await self._send(rq.calibration_call(domain, model), CalibrationResponse)

    async def close(self) -> None:
        if self._owned:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        await self.close()
