"""Total cost of ownership: what serving costs, in money and energy. Pure math, no I/O.

Two components (DESIGN §6):

- **hardware**: the accelerators' purchase price amortized linearly over their service life,
  accruing with wall-clock time whether or not they are busy (an idle GPU still depreciates);
- **energy**: joules drawn × PUE (the data centre's overhead) × the electricity price. Joules come
  from NVML's energy counter where a GPU is present (``method="nvml"``); otherwise they are
  estimated as the configured board power × the time the engine was busy (``method="estimated"``).

Cost per 1k tokens and per plan decision are taken over a sliding window of samples, so they
follow the current load rather than the server's whole life.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

SECONDS_PER_YEAR = 365.25 * 24 * 3600
JOULES_PER_KWH = 3.6e6


@dataclass(frozen=True)
class TcoConfig:
    """The inputs of the cost model (all in settings, documented defaults)."""

    hardware_price: float = 30_000.0  # per accelerator, in `currency`
    accelerators: int = 1
    service_life_years: float = 4.0
    power_watts: float = 350.0  # per accelerator, used when power is estimated
    pue: float = 1.4
    electricity_price_per_kwh: float = 0.15
    currency: str = "USD"
    window_s: float = 300.0

    def __post_init__(self) -> None:
        for name in ("hardware_price", "power_watts", "electricity_price_per_kwh"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.accelerators < 1:
            raise ValueError("accelerators must be at least 1")
        if self.service_life_years <= 0 or self.window_s <= 0:
            raise ValueError("service_life_years and window_s must be positive")
        if self.pue < 1:
            raise ValueError("pue is at least 1 (1.0 = no overhead)")

    @property
    def hardware_cost_per_second(self) -> float:
        return self.hardware_price * self.accelerators / (self.service_life_years * SECONDS_PER_YEAR)


def energy_cost(joules: float, config: TcoConfig) -> float:
    """Money spent on ``joules`` drawn by the accelerators, data-centre overhead included."""
    return joules / JOULES_PER_KWH * config.pue * config.electricity_price_per_kwh


def estimated_joules(busy_seconds: float, config: TcoConfig) -> float:
    """Energy when no power meter exists: configured board power × busy time, per accelerator."""
    return busy_seconds * config.power_watts * config.accelerators


@dataclass(frozen=True)
class TcoSample:
    """Running totals at one moment."""

    t: float
    hardware_cost: float
    energy_cost: float
    joules: float
    tokens: float
    decisions: float

    @property
    def cost(self) -> float:
        return self.hardware_cost + self.energy_cost


@dataclass(frozen=True)
class TcoSnapshot:
    """Totals and windowed rates."""

    hardware_cost: float
    energy_cost: float
    joules: float
    tokens: float
    decisions: float
    window_s: float
    cost_per_1k_tokens: float | None
    cost_per_decision: float | None
    joules_per_token: float | None


class TcoLedger:
    """Accumulates cost over time; feed it energy and counts, read totals and windowed rates."""

    def __init__(self, config: TcoConfig, start: float) -> None:
        self.config = config
        self._start = start
        self._last = start
        self._hardware = 0.0
        self._energy = 0.0
        self._joules = 0.0
        self._tokens = 0.0
        self._decisions = 0.0
        self._samples: deque[TcoSample] = deque()
        self._samples.append(self._sample(start))

    def _sample(self, t: float) -> TcoSample:
        return TcoSample(t, self._hardware, self._energy, self._joules, self._tokens, self._decisions)

    def advance(self, now: float, joules: float, tokens: float = 0.0, decisions: float = 0.0) -> TcoSample:
        """Account for the time since the last call: ``joules`` drawn, ``tokens`` generated, ``decisions`` made."""
        if joules < 0 or tokens < 0 or decisions < 0:
            raise ValueError("energy and counts only grow")
        dt = max(0.0, now - self._last)
        self._last = max(now, self._last)
        self._hardware += dt * self.config.hardware_cost_per_second
        self._joules += joules
        self._energy += energy_cost(joules, self.config)
        self._tokens += tokens
        self._decisions += decisions
        sample = self._sample(self._last)
        self._samples.append(sample)
        horizon = self._last - self.config.window_s
        while len(self._samples) > 2 and self._samples[1].t <= horizon:
            self._samples.popleft()
        return sample

    def snapshot(self) -> TcoSnapshot:
        first, last = self._samples[0], self._samples[-1]
        d_cost, d_tokens, d_dec = last.cost - first.cost, last.tokens - first.tokens, last.decisions - first.decisions
        d_joules = last.joules - first.joules
        return TcoSnapshot(
            hardware_cost=self._hardware, energy_cost=self._energy, joules=self._joules, tokens=self._tokens,
            decisions=self._decisions, window_s=last.t - first.t,
            cost_per_1k_tokens=d_cost / d_tokens * 1000 if d_tokens > 0 else None,
            cost_per_decision=d_cost / d_dec if d_dec > 0 else None,
            joules_per_token=d_joules / d_tokens if d_tokens > 0 else None,
        )

