"""Usage and cost per app: the counts the server stores per key and day equal what its responses reported;
costs are split by each key's share of the tokens and sum to the replica's total; replicas add to the same
rows; an app key reads only its own usage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from server.metrics import Metrics
from server.services.usage import UsageLedger
from server.store import Store, default_url
from tests.unit.server.routes.test_scopes import PROMPT, keyed_app


def per_key(entries: list[dict]) -> dict[str, dict]:
    """The report's rows (per key, day and model) summed per key."""
    rows: dict[str, dict] = {}
    for e in entries:
        row = rows.setdefault(e["key"], dict.fromkeys(("requests", "prompt_tokens", "completion_tokens", "plans",
                                                       "outcomes", "cost"), 0))
        for k in row:
            row[k] += e[k]
    return rows


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, dict[str, str]]]]:
    async with keyed_app(tmp_path, usage_flush_interval_s=0.05) as app:
        yield app


async def test_stored_usage_equals_the_responses_usage(app) -> None:  # type: ignore[no-untyped-def]
    client, auth = app
    sent = {"alice": [0, 0], "bob": [0, 0]}
    for who, n in (("alice", 3), ("bob", 1)):
        for _ in range(n):
            r = (await client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}],
                                                                 "max_tokens": 30}, headers=auth[who])).json()
            p = (await client.post("/v1/plan", json={"prompt": PROMPT, "algorithm": "greedy"},
                                   headers=auth[who])).json()
            await client.post("/v1/outcomes", json={"plan_id": p["plan_id"], "success": True}, headers=auth[who])
            for u in (r["usage"], p["usage"]):
                sent[who][0] += u["prompt_tokens"]
                sent[who][1] += u["completion_tokens"]
    rows: dict[str, dict] = {}
    deadline = time.monotonic() + 20  # flushed every 0.05 s; a loaded machine may take longer
    while time.monotonic() < deadline:
        report = (await client.get("/v1/usage", headers=auth["root"])).json()
        rows = per_key(report["data"])
        # the last outcome may be counted after the flush that held the last tokens: wait for everything
        if all(rows.get(w, {}).get(k) == v for w in sent for k, v in zip(("prompt_tokens", "completion_tokens"),
                                                                            sent[w], strict=True)) \
                and all(rows[w]["outcomes"] == rows[w]["plans"] for w in sent):
            break
        await asyncio.sleep(0.05)
    for who, (prompt, completion) in sent.items():
        row = rows[who]
        assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion), who
        assert row["plans"] == row["outcomes"] == (3 if who == "alice" else 1)
        assert row["requests"] >= 3 * row["plans"]
    assert report["currency"] == "USD" and report["totals"]["plans"] == 4

    mine = (await client.get("/v1/usage", headers=auth["bob"])).json()
    assert {e["key"] for e in mine["data"]} == {"bob"}
    theirs = await client.get("/v1/usage", params={"key": "alice"}, headers=auth["bob"])
    assert theirs.status_code == 404


async def test_costs_split_by_tokens_sum_to_the_total_across_replicas(tmp_path: Path) -> None:
    store = Store(default_url(tmp_path / "s.db"))
    await store.open()
    cost = [0.0]
    try:
        one = UsageLedger(store, Metrics(), lambda: cost[0], today=lambda: "2026-12-06")
        two = UsageLedger(store, Metrics(), lambda: cost[0] / 2, today=lambda: "2026-12-06")
        one.tokens("a", 30, 10)
        one.tokens("b", 10, 30)
        one.tokens("c", 20, 0)
        cost[0] = 10.0
        await one.flush()
        cost[0] = 13.0  # an idle interval: its cost waits for the next tokens
        await one.flush()
        one.tokens("a", 1, 0)
        await one.flush()
        two.tokens("a", 5, 5)
        await two.flush()  # another replica adds to the same rows
        rows = {r.key_name: r for r in await store.usage_rows(since="2026-12-06", until="2026-12-06")}
        assert {r.model for r in rows.values()} == {""}  # no model named: one row per key
        assert rows["a"].cost == pytest.approx(4.0 + 3.0 + 6.5) and rows["b"].cost == pytest.approx(4.0)
        assert rows["c"].cost == pytest.approx(2.0)
        assert sum(r.cost for r in rows.values()) == pytest.approx(13.0 + 6.5)  # the replicas' totals
        assert (rows["a"].prompt_tokens, rows["a"].completion_tokens) == (36, 15)
    finally:
        await store.close()
