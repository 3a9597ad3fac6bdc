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


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """The real pretrained model, added by ``foresight models add smollm2-135m-instruct`` (scripts/test.sh)."""
    from catalog.errors import CatalogError
    from catalog.known import SMOLLM2, resolve

    try:
        path = resolve(SMOLLM2.name)
    except CatalogError as exc:
        pytest.fail(f"{exc} (scripts/test.sh does before the suite)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def smol(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server on it for the session, in float32: its greedy tokens are held against transformers'."""
    srv = start_server(smollm2, tmp_path_factory.mktemp("smollm2-server"), env={"FORESIGHT_DTYPE": "float32"})
    yield srv
    srv.stop()
