"""``GET /v1/tco``: the cost model's inputs, totals and windowed rates."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class TcoInputs(BaseModel):
    hardware_price: float
    accelerators: int
    service_life_years: float
    power_watts: float
    pue: float
    electricity_price_per_kwh: float
    currency: str
    window_s: float
    hardware_cost_per_hour: float


class TcoTotals(BaseModel):
    hardware_cost: float
    energy_cost: float
    cost: float
    energy_joules: float
    completion_tokens: float
    decisions: float


class TcoWindow(BaseModel):
    seconds: float
    cost_per_1k_tokens: float | None
    cost_per_decision: float | None
    joules_per_token: float | None


class GpuReadingModel(BaseModel):
    index: int
    power_watts: float
    memory_used_bytes: int
    utilization_ratio: float
    energy_joules: float | None


class TcoReport(BaseModel):
    """Cost of ownership so far: hardware amortization and energy, per 1k tokens and per decision."""

    object: Literal["tco"] = "tco"
    currency: str
    method: str
    inputs: TcoInputs
    totals: TcoTotals
    window: TcoWindow
    gpus: list[GpuReadingModel]
