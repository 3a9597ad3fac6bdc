"""The sync client on a mock transport: what it sends, what it makes of odd answers, what it imports."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from foresight_client import APIStatusError, Foresight, ServiceUnavailableError
from tests.conftest import REPO

PLAN = {"plan_id": "plan-1", "created": 0, "model": "m", "algorithm": "greedy", "domain": "d", "decision": "commit",
        "action": None, "text": None, "rollout": None, "confidence": {"raw": None, "calibrated": None},
        "candidates": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, "candidates": 1,
                                    "depth": 1, "engine_calls": 1}, "latency_s": 0.0}


def test_only_the_given_parameters_and_the_key_are_sent() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=PLAN)

    http = httpx.Client(transport=httpx.MockTransport(answer))
    with Foresight("http://x", "sk-test", http_client=http) as fs:
        plan = fs.plan("obs", algorithm="greedy", budget={"max_depth": 1})
    assert plan.plan_id == "plan-1"
    [request] = seen
    assert json.loads(request.content) == {"prompt": "obs", "algorithm": "greedy", "budget": {"max_depth": 1}}
    assert request.headers["authorization"] == "Bearer sk-test" and request.url.path == "/v1/plan"
    assert "authorization" not in http.headers  # the caller's client is left as it was
    http.close()


@pytest.mark.parametrize(("response", "kind"), [
    (httpx.Response(200, text="<html>a proxy page</html>"), APIStatusError),
    (httpx.Response(200, json={"unexpected": True}), APIStatusError),
    (httpx.Response(503, json={"error": {"message": "loading", "type": "service_unavailable", "code": "loading"}},
                    headers={"retry-after": "5"}), ServiceUnavailableError),
])
def test_odd_answers_are_client_errors_not_parse_errors(response: httpx.Response, kind: type) -> None:
    http = httpx.Client(transport=httpx.MockTransport(lambda _r: response))
    with Foresight("http://x", http_client=http) as fs, pytest.raises(kind) as err:
        fs.calibration()
    assert err.value.status_code == response.status_code
    http.close()


def test_importing_the_client_loads_nothing_of_the_server() -> None:
    code = ("import sys, foresight_client; bad = sorted(m for m in ('server', 'engine', 'fastapi', 'vllm', 'torch') "
            "if m in sys.modules); print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
