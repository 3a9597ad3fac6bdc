"""schemathesis against the server's own OpenAPI schema, with a valid key: no 5xx, responses match the schema."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.integration.conftest import served_model
from tests.integration.server_process import ServerProcess, start_server

pytestmark = pytest.mark.integration
EXAMPLES_PER_OPERATION = 25
SMALL = {  # keep random generation requests cheap on a CPU
    "FORESIGHT_AUTH_ENABLED": "true", "FORESIGHT_MAX_TOKENS_LIMIT": "16", "FORESIGHT_MAX_N": "2",
    "FORESIGHT_MAX_PLAN_TOKENS": "256", "FORESIGHT_MAX_PLAN_CANDIDATES": "4", "FORESIGHT_MAX_PLAN_DEPTH": "2",
    "FORESIGHT_MAX_PLAN_DEADLINE_S": "10", "FORESIGHT_REQUEST_TIMEOUT_S": "30",
}


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    srv = start_server(served_model(), tmp_path_factory.mktemp("fuzz"), env=SMALL)
    made = srv.cli("keys", "create", "--name", "fuzzer")
    assert made.returncode == 0, made.stderr
    # the server warmed its engine up before /ready (server/warmup.py): the first fuzzed request with
    # log-probabilities no longer pays a kernel compile (over 10 s on a 2-core machine, cold)
    yield srv, made.stdout.strip()
    srv.stop()


def test_no_5xx_and_schema_conformance(fuzz_server: tuple[ServerProcess, str]) -> None:
    srv, key = fuzz_server
    schema = schemathesis.openapi.from_url(f"{srv.url}/openapi.json")
    auth = {"Authorization": f"Bearer {key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/plan",
                                              "/v1/outcomes",
                                              "/v1/calibration", "/v1/models", "/v1/tco", "/health", "/ready"}
    calls = 0
    for op in operations:
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(base_url=srv.url, headers=auth,
                                   checks=[not_a_server_error, response_schema_conformance])

        run()
    assert calls >= len(operations) * 5
    health = httpx.get(f"{srv.url}/health").json()
    assert health["status"] == "ok"
