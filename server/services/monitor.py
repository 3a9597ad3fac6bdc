"""A once-a-second sampler: engine busy time, energy, cost, queue depth (the TCO model's inputs).

Energy comes from NVML's counter where a GPU is present; otherwise configured power × the time the
engine had unfinished work, labelled ``method="estimated"``. Token and decision counts come from
:class:`server.metrics.Metrics`, which counts them once for ``/metrics`` and the ledger alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from server.metrics import Metrics
from server.power import GpuReading, PowerSource
from server.tco import TcoConfig, TcoLedger, estimated_joules

log = logging.getLogger("foresight.monitor")


class Monitor:
    """Samples the engine and the power source, and keeps the TCO ledger and its gauges current."""

    def __init__(self, metrics: Metrics, config: TcoConfig, power: PowerSource | None,
                 unfinished: Callable[[], int], waiting: Callable[[], int], interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.metrics = metrics
        self.config = config
        self.power = power
        self.method = power.method if power is not None else "estimated"
        self._unfinished = unfinished
        self._waiting = waiting
        self.interval_s = interval_s
        self._clock = clock
        self.ledger = TcoLedger(config, clock())
        self._last_t = clock()
        self._last_energy: float | None = None
        self._last_tokens = 0.0
        self._last_decisions = 0.0
        self.gpus: list[GpuReading] = []
        self._task: asyncio.Task[None] | None = None

    def tick(self) -> None:
        """Account for the time since the last tick."""
        now = self._clock()
        dt = max(0.0, now - self._last_t)
        self._last_t = now
        unfinished = self._unfinished()
        busy = unfinished > 0
        self.metrics.queue_depth.set(self._waiting())
        joules = 0.0
        if self.power is not None:
            try:
                self.gpus = self.power.read()
            except Exception as exc:  # a flaky driver must not stop the server
                log.warning("power reading failed: %s", exc)
                self.gpus = []
            for g in self.gpus:
                idx = str(g.index)
                self.metrics.gpu_power.labels(idx).set(g.power_watts)
                self.metrics.gpu_memory.labels(idx).set(g.memory_used_bytes)
                self.metrics.gpu_utilization.labels(idx).set(g.utilization_ratio)
            counters = [g.energy_joules for g in self.gpus]
            if counters and all(c is not None for c in counters):
                total = float(sum(c for c in counters if c is not None))
                joules = 0.0 if self._last_energy is None else max(0.0, total - self._last_energy)
                self._last_energy = total
            else:  # no energy counter: integrate the power reading
                joules = sum(g.power_watts for g in self.gpus) * dt
        elif busy:
            joules = estimated_joules(dt, self.config)
        tokens = float(self.metrics.token_totals.get("completion", 0))
        decisions = float(self.metrics.decisions_total)
        d_tokens, d_dec = max(0.0, tokens - self._last_tokens), max(0.0, decisions - self._last_decisions)
        self._last_tokens, self._last_decisions = tokens, decisions
        before = self.ledger.snapshot()
        self.ledger.advance(now, joules, d_tokens, d_dec)
        snap = self.ledger.snapshot()
        m = self.metrics
        if busy:
            m.busy_seconds.inc(dt)
        m.energy.labels(self.method).inc(joules)
        m.cost.labels("hardware").inc(snap.hardware_cost - before.hardware_cost)
        m.cost.labels("energy").inc(snap.energy_cost - before.energy_cost)
        if snap.cost_per_1k_tokens is not None:
            m.cost_per_1k_tokens.set(snap.cost_per_1k_tokens)
        if snap.cost_per_decision is not None:
            m.cost_per_decision.set(snap.cost_per_decision)

    def cost_total(self) -> float:
        """The cost of ownership accrued so far (hardware and energy), in the TCO currency."""
        snap = self.ledger.snapshot()
        return snap.hardware_cost + snap.energy_cost

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.tick()
            except Exception:
                log.exception("monitor tick failed")

    def start(self) -> None:
        self.metrics.energy.labels(self.method).inc(0)  # the series exists from the start
        self._task = asyncio.create_task(self.run(), name="monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def report(self) -> dict[str, Any]:
        """``GET /v1/tco``: the inputs used, totals, and windowed rates."""
        snap = self.ledger.snapshot()
        return {
            "object": "tco",
            "currency": self.config.currency,
            "method": self.method,
            "inputs": {**asdict(self.config), "hardware_cost_per_hour": self.config.hardware_cost_per_second * 3600},
            "totals": {"hardware_cost": snap.hardware_cost, "energy_cost": snap.energy_cost,
                       "cost": snap.hardware_cost + snap.energy_cost, "energy_joules": snap.joules,
                       "completion_tokens": snap.tokens, "decisions": snap.decisions},
            "window": {"seconds": snap.window_s, "cost_per_1k_tokens": snap.cost_per_1k_tokens,
                       "cost_per_decision": snap.cost_per_decision, "joules_per_token": snap.joules_per_token},
            "gpus": [asdict(g) for g in self.gpus],
        }
