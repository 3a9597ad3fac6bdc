"""Usage per key, day and model: every replica adds its counts to the same rows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.schema import key_usage

COUNTS = ("requests", "prompt_tokens", "completion_tokens", "plans", "outcomes", "cost")


@dataclass(frozen=True)
class UsageRow:
    key_name: str
    day: str
    model: str  # the base or an adapter; "": none named (listings, admin), or counted before 0008
    requests: int
    prompt_tokens: int
    completion_tokens: int
    plans: int
    outcomes: int
    cost: float


class UsageQueries:
    _tx: Callable[..., AbstractAsyncContextManager[AsyncConnection]]

    async def add_usage(self, day: str, rows: Mapping[tuple[str, str], Mapping[str, float]]) -> None:
        """Add ``rows`` ((key name, model) → counts) to ``day``'s totals in one transaction: an upsert that adds,
        so replicas writing the same row at once both count."""
        async with self._tx(write=True) as conn:
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            for (name, model), counts in rows.items():
                stmt = insert(key_usage).values(key_name=name, day=day, model=model,
                                                **{c: counts.get(c, 0) for c in COUNTS})
                await conn.execute(stmt.on_conflict_do_update(
                    index_elements=["key_name", "day", "model"],
                    set_={c: getattr(key_usage.c, c) + getattr(stmt.excluded, c) for c in COUNTS}))

    async def usage_rows(self, key_name: str | None = None, since: str | None = None,
                         until: str | None = None, model: str | None = None) -> list[UsageRow]:
        """Rows by day, key, then model; ``since``/``until``: days, inclusive."""
        q = select(key_usage).order_by(key_usage.c.day, key_usage.c.key_name, key_usage.c.model)
        if key_name is not None:
            q = q.where(key_usage.c.key_name == key_name)
        if model is not None:
            q = q.where(key_usage.c.model == model)
        if since is not None:
            q = q.where(key_usage.c.day >= since)
        if until is not None:
            q = q.where(key_usage.c.day <= until)
        async with self._tx(write=False) as conn:
            rows = (await conn.execute(q)).mappings().all()
        return [UsageRow(r["key_name"], r["day"], r["model"], *(r[c] for c in COUNTS)) for r in rows]
