"""What a plan leaves out: the model's planner.json, else the algorithm's measured defaults (scripted engine);
self_consistency through /v1/plan with its tally in the response, the audit record and the metrics."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from engine.base import GenerationRequest
from engine.scripted import ScriptedEngine
from planner.defaults import MEASURED
from planner.search import Algorithm
from tests.unit.server.conftest import running_app
from tests.unit.server.routes.test_adapters_route import make_adapter
from tests.unit.server.routes.test_scopes import keyed_app


def unsure(prompt: str, index: int, request: GenerationRequest) -> str:
    """Spans that never reach a commit threshold of 0.5 (branch_commit widens to its cap); whole turns whose
    actions alternate a, b, a, b (self_consistency needs two rounds)."""
    if prompt.endswith("</confidence>"):
        return "\n<think>t</think>\n<answer>go</answer>"
    return (f"<imaginary>f{index}</imaginary>\n<confidence>30%</confidence>\n<think>t</think>\n"
            f"<answer>{'ab'[index % 2]}</answer>")


def rounds(engine: ScriptedEngine) -> list[int]:
    return [r.n for r in engine.requests]


async def test_a_plan_that_names_nothing_gets_branch_commits_measured_defaults() -> None:
    engine = ScriptedEngine(unsure, max_model_len=4096)
    async with running_app(engine, warmup=False) as client:
        r = await client.post("/v1/plan", json={"prompt": "obs"})
        assert r.status_code == 200, r.text
        assert r.json()["algorithm"] == "branch_commit"
        bc = MEASURED[Algorithm.BRANCH_COMMIT]
        assert (bc["width"], bc["width_growth"], bc["budget"]["max_candidates"]) == (1, 2, 15)
        assert rounds(engine) == [1, 2, 4, 8, 1]  # 1, 2, 4, 8 spans (15), then the best one continued
        engine.requests.clear()
        asked = await client.post("/v1/plan", json={"prompt": "obs", "width": 4, "budget": {"max_candidates": 8}})
        assert asked.status_code == 200 and rounds(engine) == [4, 4, 1]  # what is given wins; growth stays 2: 4, 8→4


async def test_the_defaults_fit_a_small_max_n_instead_of_refusing_a_request_that_asked_nothing() -> None:
    engine = ScriptedEngine(unsure, max_model_len=4096)
    async with running_app(engine, max_n=4, warmup=False) as client:
        r = await client.post("/v1/plan", json={"prompt": "obs"})
        assert r.status_code == 200, r.text
        # the largest default cap whose rounds fit: 1, 2, 4, then the last cut to 4 (11), not a 400
        assert rounds(engine) == [1, 2, 4, 4, 1] and r.json()["usage"]["candidates"] == 11


async def test_the_models_planner_json_wins_over_the_measured_defaults_and_is_shown(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "planner.json").write_text(json.dumps({
        "algorithm": "self_consistency", "branch_commit": {"width": 3, "width_growth": 1,
                                                           "budget": {"max_candidates": 6}}}))
    engine = ScriptedEngine(unsure, max_model_len=4096, path=str(base))
    async with running_app(engine, warmup=False) as client:
        card = (await client.get("/v1/models")).json()["data"][0]
        assert card["planner"]["algorithm"] == "self_consistency"
        assert card["planner"]["source"] == str(base / "planner.json")
        assert card["planner"]["algorithms"]["branch_commit"] == {
            "width": 3, "width_growth": 1, "commit_threshold": 0.5, "budget": {"max_candidates": 6}}
        assert card["planner"]["algorithms"]["self_consistency"] == MEASURED[Algorithm.SELF_CONSISTENCY]
        plan = await client.post("/v1/plan", json={"prompt": "obs"})
        assert plan.json()["algorithm"] == "self_consistency"
        engine.requests.clear()
        bc = await client.post("/v1/plan", json={"prompt": "obs", "algorithm": "branch_commit"})
        assert bc.status_code == 200 and rounds(engine) == [3, 3, 1]


async def test_a_bad_planner_json_stops_the_start_naming_the_file(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "planner.json").write_text(json.dumps({"branch_commit": {"width": 0}}))
    engine = ScriptedEngine(unsure, path=str(base))
    async with running_app(engine, wait_ready=False) as client:
        for _ in range(200):
            ready = await client.get("/ready")
            if ready.status_code == 503 and "planner" in ready.text:
                break
            await asyncio.sleep(0.01)
        assert "bad planner defaults" in ready.text and "planner.json" in ready.text and "width" in ready.text


async def test_an_adapter_with_a_bad_planner_json_is_refused_on_load(tmp_path: Path) -> None:
    good, bad = make_adapter(tmp_path, "good"), make_adapter(tmp_path, "bad")
    (good / "planner.json").write_text(json.dumps({"self_consistency": {"commit_threshold": 0.9}}))
    (bad / "planner.json").write_text(json.dumps({"self_consistency": {"nonsense": 1}}))
    async with keyed_app(tmp_path) as (client, auth):
        refused = await client.post("/v1/adapters", json={"name": "bad", "path": str(bad)}, headers=auth["root"])
        assert refused.status_code == 400, refused.text
        err = refused.json()["error"]
        assert err["code"] == "invalid_planner_defaults" and "nonsense" in err["message"]
        loaded = await client.post("/v1/adapters", json={"name": "good", "path": str(good)}, headers=auth["root"])
        assert loaded.status_code == 201
        assert loaded.json()["planner"]["algorithms"]["self_consistency"]["commit_threshold"] == 0.9
        plan = await client.post("/v1/plan", json={"model": "good", "prompt": "obs"}, headers=auth["root"])
        assert plan.status_code == 200  # the defaults in use now
        # a new file in the same directory, loaded again: its defaults, not the ones read the first time
        assert (await client.delete("/v1/adapters/good", headers=auth["root"])).status_code == 200
        (good / "planner.json").write_text(json.dumps({"self_consistency": {"commit_threshold": 0.7}}))
        again = await client.post("/v1/adapters", json={"name": "good", "path": str(good)}, headers=auth["root"])
        assert again.json()["planner"]["algorithms"]["self_consistency"]["commit_threshold"] == 0.7
        listed = {m["id"]: m for m in (await client.get("/v1/models", headers=auth["root"])).json()["data"]}
        assert listed["good"]["planner"]["algorithms"]["self_consistency"]["commit_threshold"] == 0.7


async def test_self_consistency_answers_with_its_tally_audited_and_counted(tmp_path: Path) -> None:
    engine = ScriptedEngine(unsure, max_model_len=4096)
    async with running_app(engine, store_path=str(tmp_path / "s.db"), warmup=False) as client:
        r = await client.post("/v1/plan", json={"prompt": "obs", "algorithm": "self_consistency", "width": 2,
                                                "width_growth": 2, "commit_threshold": 0.6,
                                                "budget": {"max_candidates": 6}})
        assert r.status_code == 200, r.text
        body = r.json()
        assert rounds(engine) == [2, 4]  # a, b: no agreement; then a, b, a, b: still 50/50, budget spent
        assert body["decision"] == "budget_exhausted"
        assert [(v["key"], v["candidates"]) for v in body["votes"]] == [("answer:a", [0, 2, 4]),
                                                                        ("answer:b", [1, 3, 5])]
        assert body["action"]["content"] == "a" and [c["vote"] for c in body["candidates"]][:2] == ["answer:a",
                                                                                                 "answer:b"]
        audit = (await client.get(f"/v1/plans/{body['plan_id']}")).json()
        assert [c["vote"] for c in audit["candidates"]] == [c["vote"] for c in body["candidates"]]
        metrics = (await client.get("/metrics")).text
        assert 'foresight_plan_decisions_total{algorithm="self_consistency",decision="budget_exhausted"} 1.0' \
            in metrics
        other = await client.post("/v1/plan", json={"prompt": "obs", "algorithm": "best_of_n"})
        assert other.json()["votes"] is None


@pytest.mark.parametrize("body", [{"algorithm": "self_consistency", "width": 2, "width_growth": 8,
                                   "budget": {"max_candidates": 16}}])
async def test_self_consistencys_growing_rounds_are_held_to_max_n(body: dict) -> None:
    async with running_app(ScriptedEngine(unsure, max_model_len=4096), max_n=8) as client:
        r = await client.post("/v1/plan", json={"prompt": "obs", **body})
        assert r.status_code == 400 and r.json()["error"]["code"] == "round_too_wide"
