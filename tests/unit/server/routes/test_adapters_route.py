"""Adapters served by name on one base (scripted engine; vLLM's own LoRA path: tests/integration/test_adapters.py):
listing, selection on every endpoint, default_model, unknown model → 404, run-time load/unload by admins,
recorded, base mismatch refused, calibration per (model, domain)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from catalog.adapters import ADAPTER_META, base_sha256
from engine.base import GenerationRequest
from engine.scripted import ScriptedEngine
from server.app import services_of
from tests.unit.server.conftest import _FAKE_CHECKPOINT, running_app, settings
from tests.unit.server.routes.test_scopes import keyed_app


def by_adapter(prompt: str, index: int, request: GenerationRequest) -> str:
    """A turn whose confidence says which model wrote it (base 90%, any adapter 30%)."""
    conf = 90 if request.adapter is None else 30
    return (f"<imaginary>x=10 then 40 ({request.adapter or 'base'})</imaginary>\n<confidence>{conf}%</confidence>\n"
            "<think>go</think>\n<answer>done</answer>")


def make_adapter(root: Path, name: str, base_digest: str | None = None, rank: int = 8) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank}))
    (d / "adapter_model.safetensors").write_bytes(b"")
    digest = base_digest if base_digest is not None else base_sha256(_FAKE_CHECKPOINT)
    (d / ADAPTER_META).write_text(json.dumps({"base": "scripted", "base_sha256": digest}))
    return d


async def test_models_lists_the_base_and_each_adapter_and_model_selects_one(tmp_path: Path) -> None:
    engine = ScriptedEngine(by_adapter, name="scripted")
    a = make_adapter(tmp_path, "shop")
    engine.loaded = {"shop": str(a)}  # what the real engine loads at start from the setting
    async with running_app(engine, adapters={"shop": str(a)}) as client:
        listed = (await client.get("/v1/models")).json()["data"]
        assert [(m["id"], m["parent"], m["default"]) for m in listed] == [("scripted", None, True),
                                                                         ("shop", "scripted", False)]
        chat = await client.post("/v1/chat/completions", json={
            "model": "shop", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 200})
        assert chat.status_code == 200 and chat.json()["model"] == "shop"
        assert engine.requests[-1].adapter == "shop" and "(shop)" in chat.json()["choices"][0]["message"]["content"]
        done = await client.post("/v1/completions", json={"model": "scripted", "prompt": "x", "max_tokens": 200})
        assert done.status_code == 200 and engine.requests[-1].adapter is None
        plan = await client.post("/v1/plan", json={"model": "shop", "prompt": "obs", "algorithm": "greedy"})
        assert plan.status_code == 200, plan.text
        assert plan.json()["model"] == "shop" and {r.adapter for r in engine.requests[-1:]} == {"shop"}
        assert plan.json()["confidence"]["raw"] == pytest.approx(0.3)
        resp = await client.post("/v1/responses", json={"model": "shop", "input": "hi", "max_output_tokens": 200})
        assert resp.status_code == 200 and resp.json()["model"] == "shop"


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
    ("/v1/completions", {"prompt": "x"}),
    ("/v1/responses", {"input": "hi"}),
    ("/v1/plan", {"prompt": "obs"}),
])
async def test_an_unknown_model_is_404_model_not_found_naming_it(client: httpx.AsyncClient, path: str,
                                                                 body: dict) -> None:
    r = await client.post(path, json={**body, "model": "no-such-adapter"})
    assert r.status_code == 404, r.text
    err = r.json()["error"]
    assert err["code"] == "model_not_found" and "no-such-adapter" in err["message"] and err["param"] == "model"


async def test_default_model_decides_when_model_is_omitted(tmp_path: Path) -> None:
    engine = ScriptedEngine(by_adapter, name="scripted")
    a = make_adapter(tmp_path, "shop")
    engine.loaded = {"shop": str(a)}
    async with running_app(engine, adapters={"shop": str(a)}, default_model="shop") as client:
        plan = await client.post("/v1/plan", json={"prompt": "obs", "algorithm": "greedy"})
        assert plan.json()["model"] == "shop" and engine.requests[-1].adapter == "shop"
        assert [m["default"] for m in (await client.get("/v1/models")).json()["data"]] == [False, True]
        unload = await client.delete("/v1/adapters/shop")
        assert unload.status_code == 409 and unload.json()["error"]["code"] == "model_in_use"


def test_settings_refuse_an_adapter_of_another_base_or_no_adapter_at_all(tmp_path: Path) -> None:
    other = make_adapter(tmp_path, "other", base_digest="0" * 64)
    with pytest.raises(ValidationError, match="was trained on base"):
        settings(adapters={"other": str(other)})
    with pytest.raises(ValidationError, match="not a LoRA adapter"):
        settings(adapters={"empty": str(tmp_path)})
    with pytest.raises(ValidationError, match="default_model"):
        settings(default_model="nothing")
    with pytest.raises(ValidationError, match="base's own served name"):
        settings(adapters={"scripted": str(make_adapter(tmp_path, "same"))})


async def test_admins_load_and_unload_adapters_at_run_time_recorded(tmp_path: Path) -> None:
    a, wrong = make_adapter(tmp_path, "a1"), make_adapter(tmp_path, "wrong", base_digest="f" * 64)
    async with keyed_app(tmp_path) as (client, auth):
        root, alice = auth["root"], auth["alice"]
        denied = await client.post("/v1/adapters", json={"name": "a1", "path": str(a)}, headers=alice)
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "admin_required"
        loaded = await client.post("/v1/adapters", json={"name": "a1", "path": str(a)}, headers=root)
        assert loaded.status_code == 201, loaded.text
        assert loaded.json()["id"] == "a1" and loaded.json()["parent"] == "scripted"
        ids = [m["id"] for m in (await client.get("/v1/models", headers=alice)).json()["data"]]
        assert ids == ["scripted", "a1"]
        again = await client.post("/v1/adapters", json={"name": "a1", "path": str(a)}, headers=root)
        assert again.status_code == 409
        mismatch = await client.post("/v1/adapters", json={"name": "w", "path": str(wrong)}, headers=root)
        assert mismatch.status_code == 400 and "trained on base" in mismatch.json()["error"]["message"]
        missing = await client.post("/v1/adapters", json={"name": "m", "path": str(tmp_path / "nope")}, headers=root)
        assert missing.status_code == 400 and missing.json()["error"]["code"] == "adapter_not_found"
        plan = await client.post("/v1/plan", json={"model": "a1", "prompt": "obs", "algorithm": "greedy"},
                                 headers=alice)
        assert plan.status_code == 200 and plan.json()["model"] == "a1"
        gone = await client.delete("/v1/adapters/a1", headers=root)
        assert gone.status_code == 200 and gone.json()["root"] == str(a.resolve())
        after = await client.post("/v1/plan", json={"model": "a1", "prompt": "obs"}, headers=alice)
        assert after.status_code == 404 and after.json()["error"]["code"] == "model_not_found"
        assert (await client.delete("/v1/adapters/a1", headers=root)).status_code == 404
        events = (await client.get("/v1/adapters/events", headers=root)).json()["data"]
        assert [(e["action"], e["model"], e["actor"]) for e in events] == [("adapter_unloaded", "a1", "root"),
                                                                          ("adapter_loaded", "a1", "root")]
        assert events[1]["detail"]["path"] == str(a.resolve()) and events[1]["detail"]["rank"] == 8


async def test_calibration_and_the_audit_trail_are_per_model(tmp_path: Path) -> None:
    engine = ScriptedEngine(by_adapter, name="scripted")
    a = make_adapter(tmp_path, "shop")
    engine.loaded = {"shop": str(a)}
    async with running_app(engine, adapters={"shop": str(a)}, store_path=str(tmp_path / "s.db"),
                           calibration_refit_interval_s=0) as client:
        for model, success in (("shop", True), ("shop", False), ("scripted", True)):
            plan = (await client.post("/v1/plan", json={"model": model, "prompt": "obs", "algorithm": "greedy",
                                                        "domain": "d"})).json()
            r = await client.post("/v1/outcomes", json={"plan_id": plan["plan_id"], "success": success})
            assert r.status_code == 200, r.text
            record = (await client.get(f"/v1/plans/{plan['plan_id']}")).json()
            assert record["model"] == model
        await services_of(client.app).calibration.settle()  # type: ignore[attr-defined]
        shop = (await client.get("/v1/calibration", params={"model": "shop"})).json()
        base = (await client.get("/v1/calibration")).json()
        assert shop["model"] == "shop" and base["model"] == "scripted"
        [d_shop], [d_base] = shop["domains"], base["domains"]
        assert (d_shop["outcomes"], d_shop["successes"]) == (2, 1)
        assert (d_base["outcomes"], d_base["successes"]) == (1, 1)
        assert d_shop["raw"]["brier"] == pytest.approx(((0.3 - 1) ** 2 + 0.3**2) / 2)
        unknown = await client.get("/v1/calibration", params={"model": "nope"})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"


async def test_usage_is_per_key_day_and_model(tmp_path: Path) -> None:
    engine = ScriptedEngine(by_adapter, name="scripted")
    a = make_adapter(tmp_path, "shop")
    engine.loaded = {"shop": str(a)}
    sent = {"shop": [0, 0, 0], "scripted": [0, 0, 0]}  # requests, tokens, plans
    async with running_app(engine, adapters={"shop": str(a)}, usage_flush_interval_s=0.05) as client:
        for model, n in (("shop", 2), ("scripted", 1)):
            for _ in range(n):
                chat = (await client.post("/v1/chat/completions", json={
                    "model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50})).json()
                plan = (await client.post("/v1/plan", json={"model": model, "prompt": "obs",
                                                            "algorithm": "greedy"})).json()
                await client.post("/v1/outcomes", json={"plan_id": plan["plan_id"], "success": True})
                sent[model][0] += 3  # the outcome counts under its plan's model
                sent[model][1] += chat["usage"]["total_tokens"] + plan["usage"]["total_tokens"]
                sent[model][2] += 1
        await client.get("/v1/models")  # names no model: counted under none
        await services_of(client.app).usage.flush()  # type: ignore[attr-defined]
        report = (await client.get("/v1/usage")).json()
        shop = (await client.get("/v1/usage", params={"model": "shop"})).json()
    rows = {e["model"]: e for e in report["data"]}
    for model, (requests, tokens, plans) in sent.items():
        row = rows[model]
        assert (row["requests"], row["prompt_tokens"] + row["completion_tokens"], row["plans"]) == \
            (requests, tokens, plans), model
        assert row["key"] == "anonymous" and row["outcomes"] == plans
    assert rows[None]["requests"] >= 1 and rows[None]["prompt_tokens"] == 0
    assert [e["model"] for e in shop["data"]] == ["shop"] and shop["data"][0] == rows["shop"]
    assert report["totals"]["plans"] == 3
