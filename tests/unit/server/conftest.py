"""App fixtures with a scripted engine, driven in-process through httpx.ASGITransport."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from engine.scripted import ScriptedEngine
from server.app import create_app, services_of
from server.config import Settings
from server.lifecycle import Phase

_FAKE_CHECKPOINT = Path(tempfile.mkdtemp(prefix="foresight-test-")) / "scripted"
_FAKE_CHECKPOINT.mkdir()
(_FAKE_CHECKPOINT / "config.json").write_text("{}")


def settings(**kw: object) -> Settings:
    kw.setdefault("store_path", str(Path(tempfile.mkdtemp(prefix="foresight-store-")) / "store.db"))
    kw.setdefault("auth_enabled", False)  # auth has its own tests (test_auth.py)
    return Settings(model=str(_FAKE_CHECKPOINT), served_model_name="scripted", **kw)  # type: ignore[arg-type]


@asynccontextmanager
async def running_app(
    engine: ScriptedEngine, wait_ready: bool = True, **kw: object
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings(**kw), engine)
    async with app.router.lifespan_context(app):
        if wait_ready:
            for _ in range(200):
                if services_of(app).lifecycle.phase is Phase.READY:
                    break
                await asyncio.sleep(0.01)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
def engine() -> ScriptedEngine:
    return ScriptedEngine(name="scripted")


@pytest.fixture
async def client(engine: ScriptedEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(engine) as c:
        yield c
