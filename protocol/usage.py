"""``GET /v1/usage``: requests, tokens, plans, outcomes and cost per key, day and model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class UsageEntry(BaseModel):
    key: str = Field(description="The key's name (`anonymous`: calls made with auth off).")
    day: str = Field(description="YYYY-MM-DD, UTC.")
    model: str | None = Field(description=(
        "The served model (the base or an adapter) the requests ran on; null: requests that named none "
        "(listings, admin calls) and usage counted before usage was kept per model."))
    requests: int
    prompt_tokens: int
    completion_tokens: int
    plans: int
    outcomes: int
    cost: float = Field(description="Cost of ownership attributed by the key's share of the tokens.")


class UsageTotals(BaseModel):
    requests: int
    prompt_tokens: int
    completion_tokens: int
    plans: int
    outcomes: int
    cost: float


class UsageReport(BaseModel):
    object: Literal["list"] = "list"
    currency: str = Field(description="The TCO model's currency (tco_currency).")
    data: list[UsageEntry]
    totals: UsageTotals
