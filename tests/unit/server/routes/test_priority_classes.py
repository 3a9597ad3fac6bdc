"""Priority classes: a key's class reaches every engine call of its requests as the engine's priority
(interactive 0, batch 10: vLLM runs lower first), and admission keeps batch work within batch_max_share of the
engine's sequences with a 429 that says so (real SQLite store, scripted engine)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine.scripted import ScriptedEngine
from server.store import Store, default_url
from tests.unit.server.conftest import running_app
from tests.unit.server.test_auth import make_key

PROMPT = "<information>x=5 target=40 steps=6</information>\n"


def turn(prompt: str, index: int, request: object) -> str:
    return "<imaginary>x=10</imaginary>\n<confidence>50%</confidence>\n<answer>go</answer>"


async def _classes(store: Path) -> dict[str, dict[str, str]]:
    keys = {"chat": await make_key(store, "chat"), "bulk": await make_key(store, "bulk")}
    s = Store(default_url(store))
    await s.open()
    try:
        await s.update_key("bulk", {"priority_class": "batch"})
    finally:
        await s.close()
    return {k: {"authorization": f"Bearer {v}"} for k, v in keys.items()}


async def test_every_engine_call_carries_the_keys_class(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    auth = await _classes(store)
    engine = ScriptedEngine(turn, max_model_len=2048)
    async with running_app(engine, store_path=str(store), auth_enabled=True, warmup=False) as client:
        for who in ("chat", "bulk"):
            engine.requests.clear()
            for path, body in (("/v1/completions", {"prompt": PROMPT, "max_tokens": 4}),
                               ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
                               ("/v1/responses", {"input": "hi", "max_output_tokens": 8}),
                               ("/v1/plan", {"prompt": PROMPT, "algorithm": "branch_commit", "width": 2,
                                             "commit_threshold": 0.9, "budget": {"max_candidates": 4}})):
                r = await client.post(path, json=body, headers=auth[who])
                assert r.status_code == 200, r.text
            assert len(engine.requests) >= 6  # a plan's rounds and continuation, each one an engine call
            assert {r.priority for r in engine.requests} == {10 if who == "bulk" else 0}


async def test_batch_work_past_its_share_gets_a_429_while_interactive_work_is_admitted(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    auth = await _classes(store)
    engine = ScriptedEngine(turn, max_model_len=2048, delay_s=0.05)
    async with running_app(engine, store_path=str(store), auth_enabled=True, warmup=False, max_num_seqs=4,
                           max_queue=4, batch_max_share=0.5) as client:
        body = {"prompt": PROMPT, "max_tokens": 20, "n": 2}
        first = asyncio.create_task(client.post("/v1/completions", json=body, headers=auth["bulk"]))
        await asyncio.sleep(0.05)  # the batch request holds 2 sequences: the batch share of 4 running slots
        refused = await client.post("/v1/completions", json=body, headers=auth["bulk"])
        assert refused.status_code == 429, refused.text
        err = refused.json()["error"]
        assert err["code"] == "batch_share_full" and "batch_max_share" in err["message"]
        admitted = await client.post("/v1/completions", json=body, headers=auth["chat"])
        assert admitted.status_code == 200
        assert (await first).status_code == 200
        again = await client.post("/v1/completions", json=body, headers=auth["bulk"])
        assert again.status_code == 200  # the share is free again


async def test_an_app_past_its_fair_share_gets_a_429_while_another_app_of_its_class_is_served(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    auth = await _classes(store)  # "chat" and "bulk"; make bulk interactive again: two interactive apps
    s = Store(default_url(store))
    await s.open()
    try:
        await s.update_key("bulk", {"priority_class": "interactive"})
    finally:
        await s.close()
    engine = ScriptedEngine(turn, max_model_len=2048, delay_s=0.1)  # each request runs 2 s
    async with running_app(engine, store_path=str(store), auth_enabled=True, warmup=False, max_num_seqs=4,
                           max_queue=2) as client:  # 6 slots: 3 each while both apps are active
        body = {"prompt": PROMPT, "max_tokens": 20}
        flood = [asyncio.create_task(client.post("/v1/completions", json=body, headers=auth["bulk"]))
                 for _ in range(3)]
        await asyncio.sleep(0.2)
        small = asyncio.create_task(client.post("/v1/completions", json=body, headers=auth["chat"]))
        await asyncio.sleep(0.2)
        admission = client.app.state.services.admission  # type: ignore[attr-defined]
        held = dict(admission.by_app)
        refused = await client.post("/v1/completions", json=body, headers=auth["bulk"])
        assert refused.status_code == 429, (held, refused.text)
        err = refused.json()["error"]
        assert err["code"] == "fair_share_full" and "'bulk'" in err["message"] and "3 sequences" in err["message"]
        assert (await small).status_code == 200
        assert [(await f).status_code for f in flood] == [200, 200, 200]
