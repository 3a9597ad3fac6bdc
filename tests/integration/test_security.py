"""API keys and every limit, on the real server with auth on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from reference import data
from reference import numberreach as env
from tests.integration.conftest import served_model
from tests.integration.server_process import ServerProcess, start_server

pytestmark = pytest.mark.integration
PROMPT = data.prompt_for(env.State(5, 40, 6))
LIMITS = {
    "FORESIGHT_AUTH_ENABLED": "true", "FORESIGHT_AUTH_CACHE_TTL_S": "0", "FORESIGHT_MAX_TOKENS_LIMIT": "64",
    "FORESIGHT_MAX_PROMPT_TOKENS": "100", "FORESIGHT_MAX_BODY_BYTES": "4096", "FORESIGHT_MAX_N": "4",
    "FORESIGHT_MAX_PLAN_CANDIDATES": "8", "FORESIGHT_MAX_NUM_SEQS": "2", "FORESIGHT_MAX_QUEUE": "1",
}


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(served_model(), tmp_path_factory.mktemp("secure"), env=LIMITS)
    yield srv
    srv.stop()


def new_key(srv: ServerProcess, name: str, *extra: str) -> str:
    made = srv.cli("keys", "create", "--name", name, *extra)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("fsk-") and len(key) > 40
    return key


def post(srv: ServerProcess, path: str, body: dict, key: str | None, **kw: object) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{srv.url}{path}", json=body, headers=headers, timeout=120, **kw)  # type: ignore[arg-type]


def completion(**kw: object) -> dict:
    return {"model": "foresight-numberreach", "prompt": PROMPT, "max_tokens": 8, **kw}


def test_keys_missing_wrong_valid_revoked(secure: ServerProcess) -> None:
    key = new_key(secure, "alice")
    for bad in (None, "fsk-not-a-key", key + "x"):
        r = post(secure, "/v1/completions", completion(), bad)
        assert r.status_code == 401, r.text
        err = r.json()["error"]
        assert err["code"] == "invalid_api_key" and "alice" not in err["message"]
        assert r.headers["www-authenticate"] == "Bearer"
    assert post(secure, "/v1/completions", completion(), key).status_code == 200
    assert httpx.get(f"{secure.url}/v1/models", headers={"authorization": f"Bearer {key}"}).status_code == 200
    assert httpx.get(f"{secure.url}/v1/models").status_code == 401
    for open_path in ("/health", "/ready", "/metrics"):
        assert httpx.get(f"{secure.url}{open_path}").status_code == 200, open_path
    listed = secure.cli("keys", "list")
    assert "alice" in listed.stdout and key not in listed.stdout and key[8:] not in listed.stdout
    assert secure.cli("keys", "revoke", "--name", "alice").returncode == 0
    assert post(secure, "/v1/completions", completion(), key).status_code == 401
    again = secure.cli("keys", "create", "--name", "alice")
    assert again.returncode == 1 and "exists" in again.stderr
    assert key not in secure.log()  # no secrets in logs


@pytest.mark.parametrize(("path", "body", "param"), [
    ("/v1/completions", completion(max_tokens=65), "max_tokens"),
    ("/v1/completions", completion(n=5), "n"),
    ("/v1/completions", completion(prompt="x=1 " * 200), "prompt"),
    ("/v1/plan", {"prompt": PROMPT, "budget": {"max_candidates": 9}}, "budget.max_candidates"),
    ("/v1/plan", {"prompt": PROMPT, "max_tokens_per_turn": 65}, "max_tokens_per_turn"),
])
def test_each_limit_is_a_400_naming_it(secure: ServerProcess, path: str, body: dict, param: str) -> None:
    key = new_key(secure, f"limits-{param}-{path[-4:]}")
    r = post(secure, path, body, key)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and "limit" in r.json()["error"]["message"]


def test_body_size_limit(secure: ServerProcess) -> None:
    key = new_key(secure, "big-body")
    r = post(secure, "/v1/completions", completion(prompt="a" * 5000), key)
    assert r.status_code == 400 and r.json()["error"]["code"] == "request_too_large"
    assert "max_body_bytes" in r.json()["error"]["message"]


def test_per_key_rate_limit_is_429_with_retry_after(secure: ServerProcess) -> None:
    key = new_key(secure, "slow-lane", "--rpm", "2")
    codes = [post(secure, "/v1/completions", completion(), key) for _ in range(3)]
    assert [r.status_code for r in codes[:2]] == [200, 200]
    assert codes[2].status_code == 429 and int(codes[2].headers["retry-after"]) >= 1
    assert codes[2].json()["error"]["code"] == "rate_limit_exceeded"


def test_full_queue_is_429_with_retry_after(secure: ServerProcess) -> None:
    key = new_key(secure, "flood")

    def one(_: int) -> httpx.Response:
        return post(secure, "/v1/completions", completion(max_tokens=64, ignore_eos=True, n=4), key)

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(one, range(12)))
    codes = sorted(r.status_code for r in results)
    assert set(codes) <= {200, 429} and 429 in codes and 200 in codes, codes
    assert all(r.headers.get("retry-after") for r in results if r.status_code == 429)
    deadline = time.monotonic() + 30
    while httpx.get(f"{secure.url}/health").json()["unfinished_requests"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert httpx.get(f"{secure.url}/health").json()["unfinished_requests"] == 0


def test_requests_vllm_refuses_are_400s_not_500s(secure: ServerProcess) -> None:
    # found by the fuzzer: vLLM refuses n > 1 with greedy sampling
    key = new_key(secure, "greedy-n")
    r = post(secure, "/v1/completions", completion(n=2, temperature=0), key)
    assert r.status_code == 400 and "greedy" in r.json()["error"]["message"], r.text
    p = post(secure, "/v1/plan", {"prompt": PROMPT, "algorithm": "best_of_n", "width": 2, "temperature": 0}, key)
    assert p.status_code == 400 and p.json()["error"]["param"] == "temperature", p.text
