"""``/v1/keys``: API keys managed over HTTP by admin keys (the ``foresight keys`` command does the same)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

Domain = Annotated[str, Field(pattern=r"^(\*|[A-Za-z0-9_.:-]{1,128})$")]


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

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v == "anonymous":
            raise ValueError("'anonymous' is reserved for calls made without a key")
        return v


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
