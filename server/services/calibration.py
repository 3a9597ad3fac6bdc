"""Outcomes and calibration: store outcomes, keep one calibration map per domain (plans are kept by
:mod:`server.services.recorder`).

The planner asks :meth:`CalibrationService.calibrate` for every decision (a dict
lookup, never I/O). Outcomes are committed to the store before they are
acknowledged; each one schedules a background refit of its domain's map
(debounced to ``refit_interval_s``), fitted in a worker thread and persisted, so
a restart keeps it. The store being down never stops planning: plans are then
not remembered (logged and counted), and outcomes are answered 503.

Replicas (docs/scaling.md): a refit holds the domain's lease in the store, so one replica fits a
domain at a time; every saved map gets a new version, which the other replicas poll every
``calibration_sync_interval_s`` (:meth:`CalibrationService.run_sync`) to load it.

Metrics: ``confidence="raw"`` is the model's own confidence, ``"calibrated"``
the one the planner used when it decided (so the calibrated figures are
out-of-sample: each plan was calibrated before its outcome was known).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from planner.calibrate import CalibrationMap, CalibrationPolicy, DomainCalibrator, fit_map, map_from_dict
from planner.calibration_math import ReliabilityBin, brier_score, expected_calibration_error, reliability_bins
from planner.fidelity import rollout_fidelity
from server.metrics import Metrics
from server.services.errors import UnknownResource
from server.store import OutcomeRow, Store, StoredOutcome, StoreUnavailable

log = logging.getLogger("foresight.calibration")

LEASE_RETRY_S = 1.0  # while another replica holds a domain's refit lease, ask again at most this often


def fingerprint(pairs: Sequence[tuple[float, bool]]) -> str:
    """What a map was fitted on: the same outcomes (a replaced one included) give the same fingerprint."""
    return hashlib.sha256(json.dumps(pairs, separators=(",", ":")).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ConfidenceStats:
    """Calibration of one confidence column against outcomes."""

    count: int
    ece: float | None
    brier: float | None
    bins: list[ReliabilityBin]


def confidence_stats(confidences: Sequence[float], outcomes: Sequence[bool]) -> ConfidenceStats:
    if not confidences:
        return ConfidenceStats(0, None, None, reliability_bins([], []))
    return ConfidenceStats(len(confidences), expected_calibration_error(confidences, outcomes),
                           brier_score(confidences, outcomes), reliability_bins(confidences, outcomes))


@dataclass(frozen=True)
class DomainSummary:
    """What ``GET /v1/calibration`` and ``foresight calibration report`` show for one domain."""

    domain: str
    outcomes: int
    successes: int
    map: dict[str, Any]
    raw: ConfidenceStats
    calibrated: ConfidenceStats
    fidelity_mean: float | None
    fidelity_count: int


def summarize(domain: str, rows: Sequence[OutcomeRow], map_params: Mapping[str, Any] | None) -> DomainSummary:
    """Pure: the calibration summary of a domain's outcome rows."""
    raw = [(r.raw_confidence, r.success) for r in rows if r.raw_confidence is not None]
    cal = [(r.calibrated_confidence, r.success) for r in rows if r.calibrated_confidence is not None]
    fid = [r.fidelity for r in rows if r.fidelity is not None]
    return DomainSummary(
        domain=domain,
        outcomes=len(rows),
        successes=sum(r.success for r in rows),
        map=dict(map_params or {"kind": "identity"}),
        raw=confidence_stats([c for c, _ in raw], [y for _, y in raw]),
        calibrated=confidence_stats([c for c, _ in cal], [y for _, y in cal]),
        fidelity_mean=sum(fid) / len(fid) if fid else None,
        fidelity_count=len(fid),
    )


@dataclass
class _DomainState:
    task: asyncio.Task[None] | None = None
    dirty: bool = False
    last_fit: float = -math.inf
    fitted_on: int = 0
    version: int = 0  # of the stored map this replica uses (0: none yet)


@dataclass
class CalibrationService:
    """The planner's ``Calibrator`` backed by the outcome store."""

    store: Store | None
    model: str
    metrics: Metrics
    policy: CalibrationPolicy = field(default_factory=CalibrationPolicy)
    refit_interval_s: float = 2.0
    lease_ttl_s: float = 60.0  # a refit lease outlives any fit; it lapses if its replica dies mid-fit
    replica: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    calibrator: DomainCalibrator = field(default_factory=DomainCalibrator)
    _domains: dict[str, _DomainState] = field(default_factory=dict)
    _load_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _loaded: bool = False  # maps loaded from the store (which connects on first use if it was down)

    # -- the planner's Calibrator protocol -------------------------------------------------
    def calibrate(self, raw: float | None, domain: str) -> float | None:
        return self.calibrator.calibrate(raw, domain)

    def map_for(self, domain: str) -> CalibrationMap | None:
        return self.calibrator.maps.get(domain)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Load the persisted maps; a store that is down is logged, not fatal (they load on its next use)."""
        try:
            await self._ready_store()
        except StoreUnavailable as exc:
            log.error("%s; plans are served but not remembered until it is back", exc)

    async def close(self) -> None:
        """Stop the refits in flight; the store is closed by its owner (:mod:`server.container`)."""
        tasks = [s.task for s in self._domains.values() if s.task is not None and not s.task.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _ready_store(self) -> Store:
        if self.store is None:
            raise StoreUnavailable("no outcome store is configured")
        if self._loaded:
            return self.store
        async with self._load_lock:
            if not self._loaded:
                self._adopt(await self.store.load_maps(self.model))
                for domain in await self.store.domains(self.model):
                    self._publish(summarize(domain, await self.store.outcome_rows(self.model, domain),
                                            self._params(domain)))
                self._loaded = True
        return self.store

    # -- plans and outcomes ------------------------------------------------------------------
    async def record_outcome(self, plan_id: str, success: bool, *, observation: str | None = None,
                             metadata: Mapping[str, Any] | None = None, replace: bool = False,
                             owner: str | None = None,
                             route: Callable[[str], CalibrationService] | None = None) -> StoredOutcome:
        """Commit an outcome, count it, and schedule its domain's refit. ``owner``: only that key's plans are
        found (another's answers 404, as an unknown plan). ``route``: the calibration of the model that made
        the plan (:class:`server.services.calibrations.Calibrations`); default this one."""
        try:
            store = await self._ready_store()
            stored = await store.record_outcome(plan_id, success, observation=observation, metadata=metadata,
                                                fidelity_of=rollout_fidelity, replace=replace, owner=owner)
        except StoreUnavailable:
            self.metrics.store_errors.labels("record_outcome").inc()
            raise
        domain = stored.plan.domain
        model = stored.plan.model
        self.metrics.outcomes.labels(model, domain, "success" if success else "failure").inc()
        if stored.fidelity is not None:
            self.metrics.fidelity.labels(model, domain).observe(stored.fidelity)
        target = route(stored.plan.model) if route is not None else self
        target.schedule_refit(domain)
        return stored

    async def summaries(self, domain: str | None = None,
                        may_use: Callable[[str], bool] = lambda _: True) -> list[DomainSummary]:
        """Every domain's summary that ``may_use`` allows, or one domain's. A domain with neither outcomes
        nor a map, or one the caller may not use, is a 404 alike (``domain_not_found``)."""
        store = await self._ready_store()
        known = await store.domains(self.model)
        if domain is not None:
            if not may_use(domain) or (domain not in known and domain not in self.calibrator.maps):
                raise UnknownResource(f"no outcomes or calibration in domain {domain!r}", param="domain",
                               code="domain_not_found")
            known = [domain]
        return [summarize(d, await store.outcome_rows(self.model, d), self._params(d)) for d in known if may_use(d)]

    # -- refitting ---------------------------------------------------------------------------
    def schedule_refit(self, domain: str) -> None:
        state = self._state(domain)
        state.dirty = True
        if state.task is None or state.task.done():
            state.task = asyncio.create_task(self._refit_loop(domain), name=f"refit-{domain}")

    async def settle(self) -> None:
        """Wait for every scheduled refit (tests, shutdown)."""
        while True:
            tasks = [s.task for s in self._domains.values() if s.task is not None and not s.task.done()]
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _refit_loop(self, domain: str) -> None:
        state = self._state(domain)
        while state.dirty:
            wait = state.last_fit + self.refit_interval_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            state.dirty = False
            try:
                if await self.refit(domain) is None:  # another replica holds the lease: not too often
                    await asyncio.sleep(max(0.0, LEASE_RETRY_S - self.refit_interval_s))
            except StoreUnavailable as exc:
                self.metrics.store_errors.labels("refit").inc()
                log.warning("refit of domain %r skipped: %s", domain, exc)
                return
            except Exception:  # a fit must never take the server down
                log.exception("refit of domain %r failed", domain)
                return
            finally:
                state.last_fit = time.monotonic()

    async def refit(self, domain: str) -> CalibrationMap | None:
        """Fit ``domain``'s map on all its outcomes (in a worker thread), persist it, and use it. Under the
        domain's lease: while another replica holds it this returns None and the refit is tried again
        later (so N replicas do not fit the same map N times); a stored map already fitted on the same
        outcomes (another replica's: same fingerprint) is adopted instead of fitted again."""
        store = await self._ready_store()
        if not await store.acquire_refit_lease(self.model, domain, self.replica, self.lease_ttl_s):
            self._state(domain).dirty = True
            return None
        try:
            rows = await store.outcome_rows(self.model, domain)
            pairs = [(r.raw_confidence, r.success) for r in rows if r.raw_confidence is not None]
            stored = (await store.load_maps(self.model, [domain])).get(domain)
            fitted_on = fingerprint(pairs)
            if stored is not None and stored.get("fingerprint") == fitted_on:
                self._adopt({domain: stored})
                fitted = self.calibrator.maps[domain]
            else:
                fitted = await asyncio.to_thread(fit_map, [c for c, _ in pairs], [y for _, y in pairs], self.policy)
                version = await store.save_map(self.model, domain, {**fitted.to_dict(), "fingerprint": fitted_on},
                                               len(pairs))
                self.calibrator.maps[domain] = fitted
                state = self._state(domain)
                state.fitted_on, state.version = len(pairs), version
        finally:
            await store.release_refit_lease(self.model, domain, self.replica)
        self._publish(summarize(domain, rows, self._params(domain)))
        return fitted

    # -- replicas ----------------------------------------------------------------------------
    async def sync(self) -> list[str]:
        """Load the maps another replica saved since this one last looked; returns their domains."""
        store = await self._ready_store()
        versions = await store.map_versions(self.model)
        newer = [d for d, v in versions.items() if v > self._state(d).version]
        if newer:
            self._adopt(await store.load_maps(self.model, newer))
            for domain in newer:
                self.metrics.calibration_outcomes.labels(self.model, domain).set(self._state(domain).fitted_on)
            log.info("calibration maps refitted elsewhere now used here: %s", ", ".join(sorted(newer)))
        return newer

    async def run_sync(self, interval_s: float) -> None:
        """Poll for other replicas' maps every ``interval_s`` (a store that is down is tried again)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.sync()
            except StoreUnavailable:
                self.metrics.store_errors.labels("calibration_sync").inc()
            except Exception:  # pragma: no cover - the poll must outlive any one failure
                log.exception("calibration sync failed")

    def _adopt(self, stored: Mapping[str, Mapping[str, Any]]) -> None:
        """Use stored maps, unless this replica already has a newer one (a sync that read before its own
        refit saved)."""
        for domain, params in stored.items():
            state = self._state(domain)
            if int(params.get("version", 0)) < state.version:
                continue
            self.calibrator.maps[domain] = map_from_dict(params)
            state.fitted_on, state.version = int(params.get("outcomes", 0)), int(params.get("version", 0))

    def _state(self, domain: str) -> _DomainState:
        return self._domains.setdefault(domain, _DomainState())

    def _params(self, domain: str) -> dict[str, Any]:
        m = self.calibrator.maps.get(domain)
        params = m.to_dict() if m is not None else {"kind": "identity"}
        return {**params, "outcomes": self._state(domain).fitted_on}

    def _publish(self, s: DomainSummary) -> None:
        for label, stats in (("raw", s.raw), ("calibrated", s.calibrated)):
            if stats.ece is not None and stats.brier is not None:
                self.metrics.confidence_ece.labels(self.model, s.domain, label).set(stats.ece)
                self.metrics.confidence_brier.labels(self.model, s.domain, label).set(stats.brier)
        self.metrics.calibration_outcomes.labels(self.model, s.domain).set(int(s.map.get("outcomes", 0)))
