"""``GET /v1/plans`` and ``GET /v1/plans/{plan_id}``: the plan audit trail."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from protocol.plan import ConfidenceModel


class AuditOutcome(BaseModel):
    success: bool
    at: dt.datetime
    fidelity: float | None = Field(description="How well the rollout matched the observation, in [0, 1].")
    observation: str | None


class PlanSummary(BaseModel):
    plan_id: str
    created_at: dt.datetime
    model: str
    domain: str
    algorithm: str
    decision: str
    owner: str | None = Field(description="The key that asked (null: from before keys had scopes, or auth off).")
    confidence: ConfidenceModel
    outcome: AuditOutcome | None = Field(description="What the app reported, once it has.")
    truncated: bool = Field(description="The stored record was cut to max_plan_record_bytes.")


class PlanAudit(PlanSummary):
    """One plan as kept: what was asked, every candidate, the one chosen, the usage."""

    rollout: str | None
    request: dict[str, Any] | None = Field(description="What was asked (null for plans from before the trail).")
    candidates: list[dict[str, Any]] | None = Field(description=(
        "Every candidate: id, parent, depth, text, rollout, raw and calibrated confidence, value, action, "
        "problems, tokens."))
    chosen: int | None = Field(description="The id of the candidate the plan committed to.")
    usage: dict[str, Any] | None
    truncated_by: list[str] = Field(default_factory=list, description="What was cut, when truncated.")


class PlanPage(BaseModel):
    object: Literal["list"] = "list"
    data: list[PlanSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")
