"""A plan's side effects, written in one place: its metrics, its audit record (what an outcome joins to),
its ledger entry. Planning plans (:mod:`server.services.planning`), calibration calibrates; the plan route
hands each finished plan to :class:`PlanRecorder`."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from planner.search import PlanResult
from protocol.plan import PlanInput, PlanResponse
from server.auth import Principal
from server.metrics import Metrics
from server.services.audit import audit_record
from server.services.usage import UsageLedger
from server.store import PlanRecord, Store, StoreUnavailable

log = logging.getLogger("foresight.plans")


@dataclass(frozen=True)
class Planned:
    """A finished plan: the request as planned (in the caller's domain), its response, the planner's result."""

    request: PlanInput
    response: PlanResponse
    result: PlanResult


@dataclass
class PlanRecorder:
    """Writes a plan's metrics, its audit record and its ledger entry. A store that is down loses the
    record (logged and counted in ``foresight_store_errors_total``), never the plan."""

    store: Store | None
    model: str
    metrics: Metrics | None = None
    ledger: UsageLedger | None = None
    max_record_bytes: int = 262_144

    async def record(self, planned: Planned, principal: Principal) -> bool:
        """Count, account and keep ``planned``; False when the audit record could not be stored."""
        self.count(planned.result)
        if self.ledger is not None:
            self.ledger.plan(principal.name, planned.response.model)
        return await self.keep(planned, principal)

    def count(self, result: PlanResult) -> None:
        m = self.metrics
        if m is None:
            return
        m.count_decision(result.decision.value, result.algorithm.value)
        m.plan_candidates.observe(result.usage.candidates)
        m.plan_depth.observe(result.usage.depth)
        m.plan_latency.observe(result.latency_s)
        m.count_prefix_cache(result.usage)
        for c in result.candidates:
            for problem in c.turn.problems:
                m.parse_problems.labels(problem.kind).inc()

    async def keep(self, planned: Planned, principal: Principal) -> bool:
        """The audit record: what was asked, every candidate, the decision, the key."""
        if self.store is None:
            return False
        response, result = planned.response, planned.result
        record, truncated = audit_record(planned.request, response, result.chosen.id if result.chosen else None,
                                         self.max_record_bytes, {c.id: c.turn.imaginary for c in result.candidates})
        try:
            await self.store.record_plan(PlanRecord(
                plan_id=response.plan_id, model=response.model, domain=response.domain, algorithm=response.algorithm,
                decision=response.decision, raw_confidence=response.confidence.raw,
                calibrated_confidence=response.confidence.calibrated, rollout=response.rollout,
                owner=principal.name, record=record, truncated=truncated,
            ))
            return True
        except StoreUnavailable as exc:
            if self.metrics is not None:
                self.metrics.store_errors.labels("record_plan").inc()
            log.warning("plan %s not remembered: %s", response.plan_id, exc)
            return False
