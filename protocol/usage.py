"""``GET /v1/usage``: requests, tokens, plans, outcomes and cost per key and day."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class UsageEntry(BaseModel):
    key: str = Field(description="The key's name (`anonymous`: calls made with auth off).")
    day: str = Field(description="YYYY-MM-DD, UTC.")
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
