"""Usage per key and day: every replica adds its counts to the same rows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.schema import key_usage

COUNTS = ("requests", "prompt_tokens", "completion_tokens", "plans", "outcomes", "cost")


@dataclass(frozen=True)
class UsageRow:
    key_name: str
    day: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    plans: int
    outcomes: int
    cost: float


class UsageQueries:
    _tx: Callable[..., AbstractAsyncContextManager[AsyncConnection]]

    async def add_usage(self, day: str, rows: Mapping[str, Mapping[str, float]]) -> None:
        """Add ``rows`` (key name → counts) to ``day``'s totals, in one transaction."""
        for attempt in range(2):  # a replica that inserted the same new row first: add to it instead
            try:
                async with self._tx(write=True) as conn:
                    for name, counts in rows.items():
                        where = (key_usage.c.key_name == name) & (key_usage.c.day == day)
                        added = {c: getattr(key_usage.c, c) + counts.get(c, 0) for c in COUNTS}
                        if (await conn.execute(update(key_usage).where(where).values(**added))).rowcount == 0:
                            await conn.execute(key_usage.insert().values(
                                key_name=name, day=day, **{c: counts.get(c, 0) for c in COUNTS}))
                return
            except IntegrityError:
                if attempt:
                    raise

    async def usage_rows(self, key_name: str | None = None, since: str | None = None,
                         until: str | None = None) -> list[UsageRow]:
        """Rows by day then key; ``since``/``until``: days, inclusive."""
        q = select(key_usage).order_by(key_usage.c.day, key_usage.c.key_name)
        if key_name is not None:
            q = q.where(key_usage.c.key_name == key_name)
        if since is not None:
            q = q.where(key_usage.c.day >= since)
        if until is not None:
            q = q.where(key_usage.c.day <= until)
        async with self._tx(write=False) as conn:
            rows = (await conn.execute(q)).mappings().all()
        return [UsageRow(r["key_name"], r["day"], *(r[c] for c in COUNTS)) for r in rows]
