"""The outcome store on SQLite and on a real PostgreSQL: durability, duplicates, concurrency, restart."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.store import OutcomeExists, PlanNotFound, PlanRecord, Store, StoreUnavailable, default_url


def plan(i: int | str, domain: str = "d", raw: float | None = 0.8) -> PlanRecord:
    return PlanRecord(f"plan-{i}", "m", domain, "greedy", "commit", raw, raw, "*3 21, +2 23")


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return default_url(tmp_path / "store.db")
    pg: str = request.getfixturevalue("postgres_url")
    # every test gets fresh tables: drop what an earlier test left
    asyncio.run(_reset(pg))
    return pg


async def _reset(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    async with engine.begin() as conn:
        for table in ("outcomes", "calibration_maps", "plans", "api_keys", "key_events", "key_usage", "refit_leases",
                      "model_events", "alembic_version"):
            await conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    await engine.dispose()


@pytest.fixture
async def store(url: str) -> AsyncIterator[Store]:
    s = Store(url)
    await s.open()
    yield s
    await s.close()


async def test_outcome_joins_its_plan(store: Store) -> None:
    await store.record_plan(plan(1))
    stored = await store.record_outcome("plan-1", True, observation="x=21", metadata={"episode": 7},
                                        fidelity_of=lambda a, b: 0.25)
    assert stored.plan == plan(1) and stored.success and not stored.replaced and stored.fidelity == 0.25
    rows = await store.outcome_rows("m", "d")
    assert [(r.raw_confidence, r.success, r.fidelity) for r in rows] == [(0.8, True, 0.25)]
    assert await store.domains("m") == ["d"] and await store.models() == ["m"]


async def test_unknown_plan_and_duplicates_are_refused(store: Store) -> None:
    with pytest.raises(PlanNotFound):
        await store.record_outcome("plan-missing", True)
    await store.record_plan(plan(1))
    await store.record_outcome("plan-1", True)
    with pytest.raises(OutcomeExists):
        await store.record_outcome("plan-1", False)
    assert [r.success for r in await store.outcome_rows("m", "d")] == [True]
    replaced = await store.record_outcome("plan-1", False, replace=True)
    assert replaced.replaced
    assert [r.success for r in await store.outcome_rows("m", "d")] == [False]


async def test_concurrent_writes_from_many_clients_lose_nothing(url: str) -> None:
    clients = [Store(url) for _ in range(4)]
    for c in clients:
        await c.open()
    try:
        n = 400
        await asyncio.gather(*(clients[i % 4].record_plan(plan(i)) for i in range(n)))
        await asyncio.gather(*(clients[i % 4].record_outcome(f"plan-{i}", i % 3 == 0) for i in range(n)))
        assert await clients[0].count_outcomes() == n
        rows = await clients[1].outcome_rows("m", "d")
        assert sum(r.success for r in rows) == len([i for i in range(n) if i % 3 == 0])
    finally:
        for c in clients:
            await c.close()


async def test_racing_duplicates_store_exactly_one(url: str) -> None:
    clients = [Store(url) for _ in range(3)]
    for c in clients:
        await c.open()
    try:
        await clients[0].record_plan(plan("race"))
        results = await asyncio.gather(*(clients[i % 3].record_outcome("plan-race", True) for i in range(12)),
                                       return_exceptions=True)
        assert sum(not isinstance(r, Exception) for r in results) == 1
        assert all(isinstance(r, OutcomeExists) for r in results if isinstance(r, Exception))
        assert await clients[2].count_outcomes() == 1
    finally:
        for c in clients:
            await c.close()


async def test_restart_keeps_outcomes_and_maps(url: str) -> None:
    s = Store(url)
    await s.open()
    for i in range(5):
        await s.record_plan(plan(i))
        await s.record_outcome(f"plan-{i}", i % 2 == 0)
    await s.save_map("m", "d", {"kind": "platt", "a": 1.5, "b": -0.2}, 5)
    await s.save_map("m", "d", {"kind": "platt", "a": 2.0, "b": -0.1}, 5)
    await s.close()
    again = Store(url)
    await again.open()  # migrations are idempotent
    try:
        assert await again.count_outcomes() == 5
        assert await again.load_maps("m") == {"d": {"kind": "platt", "a": 2.0, "b": -0.1, "outcomes": 5, "version": 2}}
    finally:
        await again.close()


async def test_unreachable_database_is_store_unavailable() -> None:
    s = Store("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(StoreUnavailable, match="cannot be opened"):
        await s.open()
    with pytest.raises(StoreUnavailable):
        await s.record_plan(plan(1))


def test_plain_urls_get_async_drivers() -> None:
    assert Store("postgresql://u:p@h/db").url == "postgresql+asyncpg://u:p@h/db"
    assert Store("sqlite:///x.db").url == "sqlite+aiosqlite:///x.db"
    assert "secret" not in Store("postgresql://u:secret@h/db").describe()


async def test_times_read_back_carry_their_zone(store: Store) -> None:
    """SQLite keeps no zone: a time read from it must still say UTC (RFC 3339 in every response)."""
    await store.record_plan(plan("zoned"))
    await store.record_outcome("plan-zoned", True)
    await store.create_key("k", "fsk-abc", "hash-zoned")
    page, _ = await store.audit_page()
    entry = page[0]
    assert entry.created_at.utcoffset() == dt.timedelta(0)
    assert entry.outcome is not None and entry.outcome.at.utcoffset() == dt.timedelta(0)
    key = await store.get_key("k")
    assert key is not None and key.created_at.utcoffset() == dt.timedelta(0)


async def test_usage_rows_are_per_key_day_and_model_and_add_up(store: Store) -> None:
    await store.add_usage("2026-12-07", {("app", "base"): {"requests": 1, "prompt_tokens": 4},
                                         ("app", "shop"): {"requests": 2, "cost": 0.5}})
    await store.add_usage("2026-12-07", {("app", "shop"): {"requests": 3, "cost": 0.25}})  # another replica
    rows = await store.usage_rows(key_name="app")
    assert [(r.model, r.requests, r.prompt_tokens, r.cost) for r in rows] == [("base", 1, 4, 0.0),
                                                                              ("shop", 5, 0, 0.75)]


async def test_a_key_is_updated_in_place_and_each_change_logged(store: Store) -> None:
    import datetime as dt

    await store.create_key("shop", "fsk-abcd", "h1", domains=["shop"], priority_class="batch", share_weight=2.0)
    until = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    key = await store.update_key("shop", {"sharing_group": "retail", "domains": ["shop", "returns"],
                                          "expires_at": until, "share_weight": 2.0}, actor="ops")
    assert key is not None and (key.app, key.domains, key.share_weight) == ("retail", ("shop", "returns"), 2.0)
    assert key.expires_at is not None and key.expires_at.replace(tzinfo=dt.UTC) == until
    [event, _created] = await store.key_events()
    assert event.action == "updated" and event.actor == "ops" and event.detail is not None
    assert set(event.detail) == {"sharing_group", "domains", "expires_at"}  # share_weight did not change
    assert event.detail["expires_at"]["to"].startswith("2027-01-01")
    with pytest.raises(ValueError, match="not updatable"):
        await store.update_key("shop", {"key_hash": "stolen"})
    await store.revoke_key("shop")
    assert await store.update_key("shop", {"share_weight": 3.0}) is None
