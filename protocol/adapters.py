"""``/v1/adapters``: LoRA adapters loaded and unloaded at run time by admin keys."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class AdapterLoadRequest(BaseModel):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$",
                      description="The name requests give as `model` to run on it.")
    path: str = Field(min_length=1, max_length=4096, description=(
        "The adapter's directory on the server's machine (peft's adapter_config.json and weights, and our "
        "foresight_adapter.json naming the base it was trained on)."))


class ModelEventModel(BaseModel):
    at: dt.datetime
    actor: str | None = Field(description="The admin key's name; null for the command line.")
    action: str = Field(description="adapter_loaded or adapter_unloaded")
    model: str
    detail: dict[str, Any] | None = None


class ModelEventList(BaseModel):
    object: str = "list"
    data: list[ModelEventModel]
