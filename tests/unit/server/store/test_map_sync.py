"""Calibration across replicas, on SQLite and a real PostgreSQL: a map refitted by one replica is picked
up by another's sync; one replica refits a domain at a time (a lease), and a map already fitted on the
same outcomes is adopted, not fitted again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from planner.calibrate import CalibrationPolicy
from server.metrics import Metrics
from server.services.calibration import CalibrationService
from server.store import Store
from tests.unit.server.store.test_store import plan, url  # noqa: F401  (the sqlite/postgres fixture)


@pytest.fixture
async def stores(url: str) -> AsyncIterator[tuple[Store, Store]]:  # noqa: F811
    a, b = Store(url), Store(url)
    await a.open()
    await b.open()
    yield a, b
    await a.close()
    await b.close()


def replica(store: Store, name: str) -> CalibrationService:
    return CalibrationService(store, "m", Metrics(), policy=CalibrationPolicy(min_platt=4, min_isotonic=1000),
                              refit_interval_s=0.05, replica=name)


async def outcomes(store: Store, n: int, domain: str = "d") -> None:
    for i in range(n):
        raw = 0.9 if i % 2 else 0.6
        await store.record_plan(plan(f"{domain}-{i}", domain, raw))
        await store.record_outcome(f"plan-{domain}-{i}", i % 4 != 0)


async def test_a_map_refitted_on_one_replica_is_used_by_the_other_after_sync(stores: tuple[Store, Store]) -> None:
    a, b = replica(stores[0], "a"), replica(stores[1], "b")
    await a.start()
    await b.start()
    await outcomes(stores[0], 8)
    fitted = await a.refit("d")
    assert fitted is not None and fitted.to_dict()["kind"] == "platt"
    assert b.calibrate(0.9, "d") == 0.9, "before sync, b still uses identity"
    assert await b.sync() == ["d"]
    assert b.calibrate(0.9, "d") == pytest.approx(a.calibrate(0.9, "d")) != 0.9
    assert await b.sync() == [], "nothing new: nothing loaded"
    await outcomes(stores[1], 4, "e")
    await b.refit("e")
    assert await a.sync() == ["e"]


async def test_one_replica_refits_a_domain_at_a_time(stores: tuple[Store, Store]) -> None:
    s0, s1 = stores
    assert await s0.acquire_refit_lease("m", "d", "a", 60)
    assert await s0.acquire_refit_lease("m", "d", "a", 60), "the holder may renew"
    racers = await asyncio.gather(*(s1.acquire_refit_lease("m", "d", f"r{i}", 60) for i in range(6)))
    assert not any(racers)
    await s0.release_refit_lease("m", "d", "a")
    racers = await asyncio.gather(*(s1.acquire_refit_lease("m", "d", f"r{i}", 60) for i in range(6)))
    assert sum(racers) == 1, "released: exactly one of the racers gets it"
    assert await s0.acquire_refit_lease("m", "x", "dead", 0)  # a holder that died: its lease lapses
    await asyncio.sleep(0.01)
    assert await s1.acquire_refit_lease("m", "x", "b", 60)


async def test_a_refit_waits_for_the_lease_and_does_not_fit_the_same_outcomes_twice(
        stores: tuple[Store, Store]) -> None:
    a, b = replica(stores[0], "a"), replica(stores[1], "b")
    await a.start()
    await b.start()
    await outcomes(stores[0], 8)
    assert await stores[1].acquire_refit_lease("m", "d", "b", 60)
    assert await a.refit("d") is None, "b holds the lease: a does not fit"
    await stores[1].release_refit_lease("m", "d", "b")
    await a.refit("d")
    version = (await stores[0].map_versions("m"))["d"]
    assert await b.refit("d") is not None
    assert (await stores[0].map_versions("m"))["d"] == version, "same outcomes: b adopted a's map, no new fit"
    assert b.calibrate(0.6, "d") == pytest.approx(a.calibrate(0.6, "d"))


async def test_scheduled_refits_of_two_replicas_end_in_one_map_from_all_outcomes(
        stores: tuple[Store, Store]) -> None:
    a, b = replica(stores[0], "a"), replica(stores[1], "b")
    await a.start()
    await b.start()
    await outcomes(stores[0], 12)
    for _ in range(5):
        a.schedule_refit("d")
        b.schedule_refit("d")
    await asyncio.wait_for(asyncio.gather(a.settle(), b.settle()), 30)
    await a.sync()
    await b.sync()
    stored = (await stores[0].load_maps("m"))["d"]
    assert stored["outcomes"] == 12 and stored["version"] <= 2  # not one fit per scheduled refit
    assert a.calibrate(0.9, "d") == pytest.approx(b.calibrate(0.9, "d"))


async def test_a_replaced_outcome_is_fitted_again_though_the_count_is_the_same(stores: tuple[Store, Store]) -> None:
    a, b = replica(stores[0], "a"), replica(stores[1], "b")
    await a.start()
    await b.start()
    await outcomes(stores[0], 8)
    await a.refit("d")
    before = (await stores[0].map_versions("m"))["d"]
    for i in range(8):  # every outcome flipped: the same count, other outcomes
        await stores[1].record_outcome(f"plan-d-{i}", i % 4 == 0, replace=True)
    await b.refit("d")
    assert (await stores[0].map_versions("m"))["d"] == before + 1, "b fitted the changed outcomes, not a's map"
    assert b.calibrate(0.9, "d") != pytest.approx(a.calibrate(0.9, "d"))
