"""``POST /v1/outcomes`` and ``GET /v1/calibration`` models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class OutcomeRequest(BaseModel):
    """What really happened after the app acted on a plan."""

    model_config = ConfigDict(extra="forbid")
    plan_id: str = Field(min_length=1, max_length=64, description="The plan_id a /v1/plan response carried.")
    success: bool = Field(description="Whether the committed action led to success.")
    observation: str | None = Field(default=None, max_length=65536,
                                    description="The real observation, scored against the imagined rollout.")
    metadata: dict[str, Any] | None = Field(default=None, description="Free-form, stored as given.")
    replace: bool = Field(default=False, description="Overwrite an existing outcome of this plan (else 409).")


class OutcomeResponse(BaseModel):
    object: Literal["outcome"] = "outcome"
    plan_id: str
    domain: str
    success: bool
    replaced: bool
    fidelity: float | None = Field(description="Rollout-vs-observation similarity in [0, 1], if observed.")


class BinModel(BaseModel):
    lower: float
    upper: float
    count: int
    mean_confidence: float
    accuracy: float


class StatsModel(BaseModel):
    count: int = Field(description="Outcomes with this confidence present.")
    ece: float | None
    brier: float | None
    bins: list[BinModel]


class DomainCalibrationModel(BaseModel):
    domain: str
    outcomes: int
    successes: int
    map: dict[str, Any] = Field(description="The map the planner uses now: kind, parameters, outcomes fitted on.")
    raw: StatsModel = Field(description="The model's own confidence.")
    calibrated: StatsModel = Field(description="The calibrated confidence the planner used when it decided.")
    fidelity_mean: float | None
    fidelity_count: int


class CalibrationResponse(BaseModel):
    object: Literal["calibration"] = "calibration"
    model: str
    domains: list[DomainCalibrationModel]
