"""Two real replicas behind the real edge (HAProxy + vllm-router), sharing a real PostgreSQL and Redis:
the whole API through the edge, one key's limit across both replicas, a refit on one replica used by the
other within the sync interval, and SIGTERM to a replica under load losing nothing (tests/integration/
replica_stack.py has the topology; docs/scaling.md why)."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from reference import data
from tests.integration.conftest import served_model
from tests.integration.replica_stack import Stack, replica_stack
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "foresight-numberreach"
PROMPT = "<information>x=6 target=40 steps=5</information>\n"
SYNC_S = 1.0


async def _create_database(url: str) -> str:
    import asyncpg

    name = f"replicas_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module")
def stack(postgres_url: str, redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    database = asyncio.run(_create_database(postgres_url))
    with replica_stack(served_model(), tmp_path_factory.mktemp("replicas"), database, redis.url,
                       env={"FORESIGHT_CALIBRATION_MIN_PLATT": "4"}) as s:
        yield s


def auth(key: str, session: str | None = None) -> dict[str, str]:
    headers = {"authorization": f"Bearer {key}"}
    return {**headers, "x-session-id": session} if session else headers


def plan_body(domain: str = "default", seed: int = 0) -> dict:
    return {"prompt": PROMPT, "algorithm": "greedy", "domain": domain, "seed": seed}


def served(stack: Stack, route: str) -> list[float]:
    """How many requests of ``route`` each replica has answered (its own /metrics)."""
    counts = []
    for r in stack.replicas:
        text = httpx.get(f"{r.url}/metrics", timeout=10).text
        counts.append(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                          if line.startswith("foresight_requests_total{") and f'route="{route}"' in line))
    return counts


def test_the_whole_api_passes_the_edge_with_its_headers(stack: Stack) -> None:
    edge, key = stack.edge_url, stack.admin_key
    with httpx.Client(base_url=edge, timeout=120, headers=auth(key)) as c:
        assert c.post("/v1/completions", json={"model": MODEL, "prompt": PROMPT, "max_tokens": 8}).status_code == 200
        chat = {"model": MODEL, "messages": [{"role": "user", "content": "x=6 target=40 steps=5"}], "max_tokens": 8}
        assert c.post("/v1/chat/completions", json=chat).json()["object"] == "chat.completion"
        with c.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}) as s:
            assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
            events = [line for line in s.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "data: [DONE]" and len(events) > 3
        plan = c.post("/v1/plan", json=plan_body())
        assert plan.status_code == 200, plan.text
        outcome = c.post("/v1/outcomes", json={"plan_id": plan.json()["plan_id"], "success": True})
        assert outcome.status_code == 200, outcome.text
        responses = c.post("/v1/responses", json={"model": MODEL, "input": "x=6 target=40 steps=5",
                                                  "max_output_tokens": 8})
        assert responses.status_code == 200 and responses.json()["object"] == "response"
        with c.stream("POST", "/v1/responses", json={"model": MODEL, "input": "x=6 target=40 steps=5",
                                                     "max_output_tokens": 8, "stream": True}) as s:
            kinds = [json.loads(line[6:])["type"] for line in s.iter_lines() if line.startswith("data: ")]
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
        assert c.get("/v1/calibration").status_code == 200
        assert c.get("/v1/keys").status_code == 200  # an admin route: the key reached the replica
        assert c.get("/v1/plans", params={"limit": 1}).status_code == 200
        assert c.get("/v1/models").json()["data"][0]["id"] == MODEL
        page = httpx.get(f"{edge}/inspect", timeout=30)  # the inspector: its login page, no key needed
        assert page.status_code == 200 and "<form" in page.text
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "x=6 target=40 steps=5"}], "max_tokens": 4}
    for path, body in (("/v1/chat/completions", chat), ("/v1/plan", plan_body())):  # no key: the replica's 401
        refused = httpx.post(f"{edge}{path}", json=body, timeout=30)
        assert refused.status_code == 401 and "API key" in refused.json()["error"]["message"]


def test_a_session_stays_on_one_replica(stack: Stack) -> None:
    before = served(stack, "/v1/plan")
    for i in range(6):
        r = httpx.post(f"{stack.edge_url}/v1/plan", json=plan_body(seed=i), headers=auth(stack.admin_key, "agent-7"),
                       timeout=120)
        assert r.status_code == 200, r.text
    after = served(stack, "/v1/plan")
    assert sorted(a - b for a, b in zip(after, before, strict=True)) == [0, 6]
    before = served(stack, "/v1/chat/completions")
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "x=6 target=40 steps=5"}], "max_tokens": 4}
    for _ in range(6):
        assert httpx.post(f"{stack.edge_url}/v1/chat/completions", json=chat, timeout=120,
                          headers=auth(stack.admin_key, "agent-7")).status_code == 200
    after = served(stack, "/v1/chat/completions")
    assert sorted(a - b for a, b in zip(after, before, strict=True)) == [0, 6]


def test_one_keys_rate_limit_holds_across_both_replicas(stack: Stack) -> None:
    key = stack.key("four-a-minute", "--rpm", "4")
    body = {"model": MODEL, "prompt": PROMPT, "max_tokens": 4}
    codes = [httpx.post(f"{stack.replicas[i % 2].url}/v1/completions", json=body, headers=auth(key),
                        timeout=120).status_code for i in range(8)]
    assert codes.count(200) == 4 and codes.count(429) == 4, codes
    for path, payload in (("/v1/completions", body), ("/v1/plan", plan_body())):
        limited = httpx.post(f"{stack.edge_url}{path}", json=payload, headers=auth(key), timeout=120)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1, (path, limited.text)
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"


def test_outcomes_through_one_replica_recalibrate_the_other(stack: Stack) -> None:
    a, b = stack.replicas
    domain = "synced"
    for seed, state in enumerate(data.visited_states(random.Random(3), heldout=True)):
        if seed == 12:
            break
        plan = httpx.post(f"{a.url}/v1/plan", json={**plan_body(domain, seed), "prompt": data.prompt_for(state)},
                          headers=auth(stack.admin_key), timeout=120).json()
        success = seed % 3 != 0
        out = httpx.post(f"{a.url}/v1/outcomes", json={"plan_id": plan["plan_id"], "success": success},
                         headers=auth(stack.admin_key), timeout=30)
        assert out.status_code == 200, out.text

    def map_on(replica_url: str) -> dict:
        r = httpx.get(f"{replica_url}/v1/calibration", params={"domain": domain}, headers=auth(stack.admin_key),
                      timeout=30)
        return dict(r.json()["domains"][0]["map"])

    deadline = time.monotonic() + 30
    while map_on(a.url).get("outcomes") != 12 and time.monotonic() < deadline:
        time.sleep(0.1)
    fitted = map_on(a.url)
    assert fitted["kind"] == "platt" and fitted["outcomes"] == 12, fitted
    t0 = time.monotonic()
    while map_on(b.url) != fitted and time.monotonic() - t0 < 10:
        time.sleep(0.1)
    took = time.monotonic() - t0
    assert map_on(b.url) == fitted, "replica b never picked up a's map"
    assert took <= SYNC_S + 1.5, f"b used a's map after {took:.1f} s (sync interval {SYNC_S} s)"


def test_redis_going_away_leaves_the_replicas_serving(stack: Stack, redis: RedisServer) -> None:
    """Fail open: with Redis stopped every request is still served, each counted as a limit not applied;
    limits hold again once it is back."""
    key = stack.key("through-an-outage", "--rpm", "1000")
    body = {"model": MODEL, "prompt": PROMPT, "max_tokens": 4}

    def errors() -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for r in stack.replicas
                   for line in httpx.get(f"{r.url}/metrics", timeout=10).text.splitlines()
                   if line.startswith("foresight_rate_limit_errors_total{"))

    before = errors()
    redis.stop()
    try:
        codes = [httpx.post(f"{stack.replicas[i % 2].url}/v1/completions", json=body, headers=auth(key),
                            timeout=120).status_code for i in range(6)]
    finally:
        redis.start()
    assert codes == [200] * 6
    assert errors() - before >= 6
    once = stack.key("after-the-outage", "--rpm", "1")
    deadline = time.monotonic() + 15  # the replicas' clients reconnect on their own
    while time.monotonic() < deadline:
        first = httpx.post(f"{stack.replicas[0].url}/v1/completions", json=body, headers=auth(once), timeout=120)
        if first.status_code == 429:
            break  # an earlier try counted: Redis is back
        time.sleep(0.5)
    refused = httpx.post(f"{stack.replicas[1].url}/v1/completions", json=body, headers=auth(once), timeout=120)
    assert refused.status_code == 429, "limits hold across replicas again"


def test_sigterm_to_a_replica_under_load_loses_no_request(stack: Stack) -> None:
    """Runs last: it stops replica b. Every request ends answered (200), or with a clear JSON error."""
    key = stack.admin_key
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "x=6 target=40 steps=5"}], "max_tokens": 16}

    def one(i: int) -> tuple[int, str]:
        path, body = (("/v1/chat/completions", chat) if i % 2 else ("/v1/plan", plan_body(seed=i)))
        try:
            r = httpx.post(f"{stack.edge_url}{path}", json=body, headers=auth(key, f"s{i % 5}"), timeout=120)
            return r.status_code, r.text[:300]
        except httpx.HTTPError as exc:  # a lost request: the client saw no answer at all
            return -1, repr(exc)

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(one, i) for i in range(40)]
        time.sleep(2.0)
        stack.replicas[1].proc.send_signal(signal.SIGTERM)
        results = [f.result() for f in futures]
    assert stack.replicas[1].proc.wait(60) == 0, "the replica drained and exited cleanly"
    lost = [(code, text) for code, text in results if code == -1]
    unclear = [(code, text) for code, text in results if code not in (-1, 200) and '"error"' not in text]
    assert not lost and not unclear, (lost, unclear, stack.logs()[-3000:])
    assert sum(code == 200 for code, _ in results) >= 36, results
    # routed around: with b gone, every request is answered by a
    after = [one(100 + i) for i in range(8)]
    assert all(code == 200 for code, _ in after), after

