"""Calibration per served model: one :class:`CalibrationService` for the base and one for each adapter.

Maps, outcomes and summaries are per (model, domain) (DESIGN §4): an adapter's confidence is its own and is
never mapped by the base's or another adapter's map. The registry makes each model's service on first use
(an adapter loaded at run time included), routes an outcome to the service of the model that made its plan,
and starts, syncs and closes them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from server.services.calibration import CalibrationService, DomainSummary
from server.store import StoredOutcome


class Calibrations:
    """Every served model's calibration; ``base`` is the base model's served name."""

    def __init__(self, factory: Callable[[str], CalibrationService], base: str) -> None:
        self._factory = factory
        self.base = base
        self._services: dict[str, CalibrationService] = {}
        self._started = False
        self._starting: set[asyncio.Task[None]] = set()

    @property
    def model(self) -> str:
        return self.base

    def of(self, model: str) -> CalibrationService:
        """The calibration of ``model`` (made on first use; started too if the registry is)."""
        service = self._services.get(model)
        if service is None:
            service = self._services[model] = self._factory(model)
            if self._started:  # kept: a task nobody holds may be collected before it ends
                self._starting.add(task := asyncio.create_task(service.start(), name=f"calibration-start-{model}"))
                task.add_done_callback(self._starting.discard)
        return service

    def models(self) -> list[str]:
        return list(self._services)

    async def start(self, models: list[str] | None = None) -> None:
        self._started = True
        for model in [self.base, *(models or [])]:
            await self.of(model).start()

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self._services.values()), return_exceptions=True)

    async def settle(self) -> None:
        for service in list(self._services.values()):
            await service.settle()

    async def run_sync(self, interval_s: float) -> None:
        """Each model's poll for other replicas' maps (models first used later join at the next round)."""
        running: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                for model, service in list(self._services.items()):
                    if model not in running:
                        running[model] = asyncio.create_task(service.run_sync(interval_s))
                await asyncio.sleep(interval_s)
        finally:
            for task in running.values():
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)

    async def record_outcome(self, plan_id: str, success: bool, *, observation: str | None = None,
                             metadata: Mapping[str, Any] | None = None, replace: bool = False,
                             owner: str | None = None) -> StoredOutcome:
        """Commit an outcome; the refit is that of the model that made the plan."""
        return await self.of(self.base).record_outcome(plan_id, success, observation=observation, metadata=metadata,
                                                       replace=replace, owner=owner, route=self.of)

    async def summaries(self, domain: str | None = None, may_use: Callable[[str], bool] = lambda _: True,
                        model: str | None = None) -> list[DomainSummary]:
        return await self.of(model or self.base).summaries(domain, may_use)
