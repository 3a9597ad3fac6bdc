"""``/v1/keys``: API keys managed over HTTP by admin keys (the ``foresight keys`` command does the same)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Domain = Annotated[str, Field(pattern=r"^(\*|[A-Za-z0-9_.:-]{1,128})$")]
PriorityClass = Literal["interactive", "batch"]
_CLASS = ("`interactive` (default): the engine serves it first; `batch`: capped at `batch_max_share` of the "
          "engine's sequences and served after interactive work.")
_WEIGHT = "Its app's share of its class while apps of the class wait: weight / the active apps' weights summed."
_GROUP = ("The app the key counts as (keys of one group share a prefix cache and a fair share); default: the "
          "key's own name.")


class KeyCreateRequest(BaseModel):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$",
                      description="A unique name: the app (or person) that uses the key ('anonymous' is "
                                  "reserved for calls without a key).")
    role: Literal["app", "admin"] = Field(default="app", description=(
        "`app`: plans, reports and reads in its domains only; `admin`: everything, keys included."))
    domains: list[Domain] | None = Field(default=None, min_length=1, max_length=64, description=(
        "The domains the key may use (`*`: every domain). Default: one domain named after the key."))
    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    expires_at: dt.datetime | None = Field(default=None, description="When the key stops working (ISO 8601).")
    priority_class: PriorityClass = Field(default="interactive", description=_CLASS)
    share_weight: float = Field(default=1.0, gt=0, le=1000, description=_WEIGHT)
    sharing_group: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$",
                                      description=_GROUP)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v == "anonymous":
            raise ValueError("'anonymous' is reserved for calls made without a key")
        return v


class KeyUpdateRequest(BaseModel):
    """What to change of a key, its secret untouched (every change is recorded in the key's events). A field left
    out stays as it is; ``sharing_group`` null makes the key its own app again."""

    model_config = ConfigDict(extra="forbid")
    priority_class: PriorityClass | None = Field(default=None, description=_CLASS)
    share_weight: float | None = Field(default=None, gt=0, le=1000, description=_WEIGHT)
    sharing_group: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$",
                                      description=_GROUP)
    domains: list[Domain] | None = Field(default=None, min_length=1, max_length=64, description=(
        "The domains the key may use from now on (`*`: every domain)."))
    requests_per_minute: int | None = Field(default=None, ge=1, description="null: unlimited.")
    tokens_per_minute: int | None = Field(default=None, ge=1, description="null: unlimited.")
    expires_at: dt.datetime | None = Field(default=None, description="null: never.")

    @model_validator(mode="after")
    def _something(self) -> KeyUpdateRequest:
        if not self.model_fields_set:
            raise ValueError("nothing to change: give at least one field")
        for name in ("priority_class", "share_weight", "domains"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class KeyRotateRequest(BaseModel):
    grace_s: float = Field(default=3600, ge=0, le=30 * 86400, description=(
        "How long the old secret keeps working, so apps switch without downtime."))


class KeyInfo(BaseModel):
    name: str
    prefix: str = Field(description="The key's first characters: enough to tell keys apart.")
    role: str
    domains: list[str]
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    requests_per_minute: int | None
    tokens_per_minute: int | None
    priority_class: str = "interactive"
    share_weight: float = 1.0
    sharing_group: str | None = None


class KeySecret(BaseModel):
    """A new key's secret, shown once."""

    key: str = Field(description="The API key itself: shown only now, store it.")
    info: KeyInfo


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyInfo]


class KeyEventInfo(BaseModel):
    at: dt.datetime
    actor: str | None = Field(description="The admin key that acted; null for the command line.")
    action: str
    key_name: str
    detail: dict[str, Any] | None


class KeyEventList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyEventInfo]
