"""Shutting down while the outcome store is still opening leaves no connection half-made."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

import server.store.db as db
from engine.scripted import ScriptedEngine
from server import container as app_module
from server.app import create_app
from server.store import Store
from tests.unit.server.conftest import settings


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real_open, real_close = Store._open, Store.close

    async def slow_open(self: Store) -> None:
        seen.append("opening")
        await asyncio.sleep(0.3)  # a slow disk or a remote database
        await real_open(self)
        seen.append("opened")

    async def close(self: Store) -> None:
        seen.append("closed an open store" if self._engine is not None else "closed a store never opened")
        await real_close(self)

    monkeypatch.setattr(Store, "_open", slow_open)
    monkeypatch.setattr(Store, "close", close)
    return seen


async def test_shutdown_lets_an_opening_store_finish_then_closes_it(events: list[str]) -> None:
    app = create_app(settings(), ScriptedEngine(name="scripted"))
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.05)
        assert events == ["opening"]
    assert events == ["opening", "opened", "closed an open store"]


async def test_a_store_that_never_finishes_opening_is_cancelled_after_the_grace(
        events: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "STORE_OPEN_GRACE_S", 0.05)  # shorter than the 0.3 s open
    app = create_app(settings(), ScriptedEngine(name="scripted"))
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.01)
    assert events == ["opening", "closed a store never opened"]


async def test_an_open_cancelled_mid_migration_disposes_its_engine(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disposed: list[bool] = []
    real_dispose = AsyncEngine.dispose

    async def dispose(self: AsyncEngine, close: bool = True) -> None:
        disposed.append(True)
        await real_dispose(self, close)

    monkeypatch.setattr(AsyncEngine, "dispose", dispose)

    def slow_migrate(conn: object) -> None:
        time.sleep(0.2)

    monkeypatch.setattr(db, "_migrate", slow_migrate)
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/s.db")
    task = asyncio.create_task(store.open())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert disposed == [True]
    assert not store.is_open
