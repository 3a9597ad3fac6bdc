"""One real server for the integration tests of a session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REFERENCE_MODEL
from tests.integration.server_process import ServerProcess, start_server


def served_model() -> Path:
    return Path(os.environ.get("FORESIGHT_TEST_MODEL", str(REFERENCE_MODEL)))


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(served_model(), tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()
