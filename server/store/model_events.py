"""Admin actions on served models: adapters loaded and unloaded at run time (and, later, promotions)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.schema import model_events


@dataclass(frozen=True)
class ModelEvent:
    """Who (the admin key's name; None for the command line) did what to which model, when."""

    at: dt.datetime
    actor: str | None
    action: str
    model: str
    detail: dict[str, Any] | None


class ModelEventQueries:
    _tx: Callable[..., AbstractAsyncContextManager[AsyncConnection]]

    async def log_model_event(self, actor: str | None, action: str, model: str,
                              detail: dict[str, Any] | None = None) -> None:
        async with self._tx(write=True) as conn:
            await conn.execute(model_events.insert().values(at=dt.datetime.now(dt.UTC), actor=actor, action=action,
                                                            model=model, detail=detail))

    async def model_events(self, limit: int = 100) -> list[ModelEvent]:
        """The newest admin actions on served models, newest first."""
        async with self._tx(write=False) as conn:
            rows = (await conn.execute(select(model_events).order_by(model_events.c.id.desc()).limit(limit)))
            return [ModelEvent(r["at"], r["actor"], r["action"], r["model"], r["detail"]) for r in rows.mappings()]
