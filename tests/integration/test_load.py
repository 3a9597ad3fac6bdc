"""A bounded mixed load on the real server, twice: no 5xx, 429s carry Retry-After, the engine
drains to zero running requests, and memory does not grow from the first run to the second."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from tests.conftest import REPO
from tests.integration.conftest import served_model
from tests.integration.server_process import ServerProcess, start_server

pytestmark = pytest.mark.integration
CLIENTS, SECONDS = 48, 30

_spec = importlib.util.spec_from_file_location("loadmix", REPO / "bench" / "loadmix.py")
assert _spec and _spec.loader
loadmix = importlib.util.module_from_spec(_spec)
sys.modules["loadmix"] = loadmix  # dataclasses look their module up
_spec.loader.exec_module(loadmix)


@pytest.fixture(scope="module")
def loaded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # a small queue so that back-pressure (429) is exercised too
    srv = start_server(served_model(), tmp_path_factory.mktemp("load"),
                       env={"FORESIGHT_MAX_NUM_SEQS": "8", "FORESIGHT_MAX_QUEUE": "16"})
    yield srv
    srv.stop()


def rss_mib(srv: ServerProcess) -> float:
    procs = [psutil.Process(srv.proc.pid), *psutil.Process(srv.proc.pid).children(recursive=True)]
    return sum(p.memory_info().rss for p in procs) / 2**20


def drained(srv: ServerProcess, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{srv.url}/health", timeout=5).json()["unfinished_requests"] == 0:
            return True
        time.sleep(0.2)
    return False


def test_mixed_load_twice(loaded_server: ServerProcess) -> None:
    rss = []
    for run in range(2):
        result = asyncio.run(loadmix.run_load(loaded_server.url, "foresight-numberreach", CLIENTS, SECONDS, seed=run))
        assert result.requests > 100, result.codes
        assert result.server_errors == 0, result.codes
        assert set(result.codes) <= {"200", "429"}, result.codes
        assert result.missing_retry_after == 0
        assert not result.errors, result.errors
        assert result.disconnects > 0
        assert drained(loaded_server), "the engine still has unfinished requests after the load"
        rss.append(rss_mib(loaded_server))
    assert rss[1] <= rss[0] * 1.10 + 50, f"memory grew from {rss[0]:.0f} MiB to {rss[1]:.0f} MiB"
