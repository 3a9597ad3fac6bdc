"""The plan audit trail in-process with a real SQLite store: every plan is kept with what was asked and its
candidate tree; an app key reads only its own plans (another's is a 404 like an unknown one); pages follow a
cursor; a record over its bound is truncated and says so; the retention purge never touches a younger plan."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from protocol.plan import PlanRequest, PlanResponse
from server.services.audit import Retention, audit_record
from server.store import PlanRecord, Store, default_url
from tests.unit.server.routes.test_scopes import PROMPT, keyed_app


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, dict[str, str]]]]:
    async with keyed_app(tmp_path) as app:
        yield app


async def test_a_plan_is_kept_whole_and_only_its_key_reads_it(app) -> None:  # type: ignore[no-untyped-def]
    client, auth = app
    made = (await client.post("/v1/plan", json={"prompt": PROMPT, "algorithm": "best_of_n", "width": 3,
                                                "temperature": 1.0, "seed": 1}, headers=auth["alice"])).json()
    plan_id = made["plan_id"]
    await client.post("/v1/outcomes", json={"plan_id": plan_id, "success": True,
                                            "observation": "<information>x=10 target=40 steps=5</information>"},
                      headers=auth["alice"])
    got = await client.get(f"/v1/plans/{plan_id}", headers=auth["alice"])
    assert got.status_code == 200, got.text
    audit = got.json()
    assert audit["owner"] == "alice" and audit["domain"] == "alice" and audit["decision"] == made["decision"]
    assert audit["request"]["algorithm"] == "best_of_n" and audit["request"]["prompt"] == PROMPT
    assert len(audit["candidates"]) == len(made["candidates"]) == 3
    assert audit["candidates"][0]["rollout"] == "x=10 then 40" and audit["chosen"] in {0, 1, 2}
    assert audit["outcome"]["success"] is True and audit["outcome"]["fidelity"] is not None
    assert audit["truncated"] is False and audit["usage"]["candidates"] == 3

    theirs = await client.get(f"/v1/plans/{plan_id}", headers=auth["bob"])
    nothing = await client.get("/v1/plans/plan-nope", headers=auth["bob"])
    assert theirs.status_code == nothing.status_code == 404
    assert (await client.get(f"/v1/plans/{plan_id}", headers=auth["root"])).status_code == 200
    assert (await client.get("/v1/plans", headers=auth["bob"])).json()["data"] == []


async def test_pages_and_filters(app) -> None:  # type: ignore[no-untyped-def]
    client, auth = app
    ids = [(await client.post("/v1/plan", json={"prompt": PROMPT, "algorithm": "greedy"},
                              headers=auth["bob"])).json()["plan_id"] for _ in range(5)]
    await client.post("/v1/outcomes", json={"plan_id": ids[0], "success": False}, headers=auth["bob"])
    seen, cursor = [], None
    while True:
        page = (await client.get("/v1/plans", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                                 headers=auth["bob"])).json()
        seen += [p["plan_id"] for p in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))  # newest first, each once
    failed = (await client.get("/v1/plans", params={"outcome": "failure"}, headers=auth["bob"])).json()["data"]
    pending = (await client.get("/v1/plans", params={"outcome": "none"}, headers=auth["bob"])).json()["data"]
    assert [p["plan_id"] for p in failed] == [ids[0]] and len(pending) == 4
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).isoformat()
    assert (await client.get("/v1/plans", params={"since": later}, headers=auth["bob"])).json()["data"] == []
    bad = await client.get("/v1/plans", params={"cursor": "not-a-cursor"}, headers=auth["bob"])
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "cursor"


def test_a_record_over_its_bound_is_truncated_and_says_so() -> None:
    req = PlanRequest.model_validate({"prompt": "p" * 50_000, "algorithm": "best_of_n", "width": 8})
    candidate = {"id": 0, "parent": None, "depth": 1, "text": "<imaginary>" + "x" * 20_000 + "</imaginary>",
                 "complete": True, "raw_confidence": 0.5, "calibrated_confidence": 0.5, "value": None,
                 "tokens": 10, "action": None, "problems": []}
    response = PlanResponse.model_validate({
        "plan_id": "plan-1", "created": 0, "model": "m", "algorithm": "best_of_n", "domain": "d",
        "decision": "commit", "action": None, "text": None, "rollout": None,
        "confidence": {"raw": 0.5, "calibrated": 0.5},
        "candidates": [{**candidate, "id": i} for i in range(40)],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, "candidates": 40, "depth": 1,
                  "engine_calls": 1}, "latency_s": 0.1})
    record, truncated = audit_record(req, response, chosen=7, limit=8192)
    import json

    assert truncated and len(json.dumps(record).encode()) <= 8192
    assert any(c["id"] == 7 for c in record["candidates"])  # the chosen one is always kept
    assert "request prompt dropped" in record["truncated"] and any("dropped" in t for t in record["truncated"])
    huge = PlanResponse.model_validate({**response.model_dump(), "candidates": [{
        **c.model_dump(), "problems": [{"kind": "k", "detail": "d" * 20_000}],
        "action": {"kind": "tool_call", "content": "y" * 50_000, "name": "f", "arguments": {"a": "z" * 50_000}},
    } for c in response.candidates]})
    bounded, cut = audit_record(req, huge, chosen=7, limit=8192)
    assert cut and len(json.dumps(bounded).encode()) <= 8192 and bounded["candidates"][0]["id"] == 7
    small, cut = audit_record(PlanRequest.model_validate({"prompt": "p"}), response.model_copy(
        update={"candidates": response.candidates[:1]}), chosen=0, limit=10**6)
    assert not cut and "truncated" not in small


async def test_the_purge_never_touches_a_younger_plan(tmp_path: Path) -> None:
    store = Store(default_url(tmp_path / "s.db"))
    await store.open()
    try:
        for i in range(3):
            await store.record_plan(PlanRecord(f"plan-{i}", "m", "d", "greedy", "commit", 0.5, 0.5, None,
                                               record={"i": i}))
        now = dt.datetime.now(dt.UTC)
        assert await Retention(store, days=30, clock=lambda: now).purge_once() == 0  # all are younger
        assert await Retention(store, days=30, clock=lambda: now + dt.timedelta(days=29)).purge_once() == 0
        assert await Retention(store, days=30, clock=lambda: now + dt.timedelta(days=31)).purge_once() == 3
        assert await store.audit_entry("plan-0") is None  # purged: read as unknown
        assert (await store.get_plan("plan-0")) is not None  # the row the calibration joins on stays
    finally:
        await store.close()
