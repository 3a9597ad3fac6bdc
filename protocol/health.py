"""``GET /health`` and ``GET /ready``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Health(BaseModel):
    """Process alive and engine not dead (503 with ``status: dead`` otherwise)."""

    status: Literal["ok", "dead"]
    phase: str | None = None
    unfinished_requests: int | None = None
    detail: str | None = None


class Readiness(BaseModel):
    """Model loaded and accepting work (503 while loading, draining, or dead)."""

    ready: bool
    phase: str
    detail: str | None = None
