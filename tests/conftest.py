"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.redis_server import RedisServer

REPO = Path(__file__).resolve().parents[1]
REFERENCE_MODEL = REPO / "models" / "foresight-numberreach"

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


@pytest.fixture(scope="session")
def reference_model() -> Path:
    if not (REFERENCE_MODEL / "config.json").exists():
        pytest.fail(f"the shipped reference model is missing at {REFERENCE_MODEL}")
    return REFERENCE_MODEL


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for the session (see tests/postgres.py)."""
    from tests.postgres import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def redis() -> Iterator[RedisServer]:
    """A real Redis server for the session (see tests/redis_server.py)."""
    from tests.redis_server import redis_server

    with redis_server() as server:
        yield server
