"""The server's plan limits come from the plan schema: each knob's ``limit`` setting caps it."""

from __future__ import annotations

import pytest

from engine.scripted import ScriptedEngine
from planner.params import params
from planner.search import Budget, PlanConfig
from server.config import Settings
from tests.unit.server.conftest import running_app
from tests.unit.server.routes.test_plan_route import foresight_script


def test_every_limit_names_a_setting() -> None:
    limits = [p.knob.limit for cls in (PlanConfig, Budget) for p in params(cls) if p.knob.limit]
    assert limits and all(limit in Settings.model_fields for limit in limits)


@pytest.mark.parametrize(("body", "field", "setting"), [
    ({"budget": {"max_tokens": 600}}, "budget.max_tokens", "max_plan_tokens"),
    ({"budget": {"max_candidates": 9}}, "budget.max_candidates", "max_plan_candidates"),
    ({"width": 5}, "width", "max_n"),
])
async def test_a_value_asked_above_its_limit_is_400_naming_both(body: dict, field: str, setting: str) -> None:
    engine = ScriptedEngine(foresight_script, max_model_len=2048)
    async with running_app(engine, max_plan_tokens=500, max_plan_candidates=8, max_n=4) as client:
        r = await client.post("/v1/plan", json={"prompt": "obs", **body})
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["code"] == "budget_too_large" and err["param"] == field and setting in err["message"]


async def test_defaults_above_a_limit_are_lowered_to_it() -> None:
    engine = ScriptedEngine(foresight_script, max_model_len=2048)
    async with running_app(engine, max_plan_candidates=2, max_n=2) as client:  # defaults: 16 and width 4
        r = await client.post("/v1/plan", json={"prompt": "obs", "algorithm": "best_of_n"})
        assert r.status_code == 200, r.text
        assert r.json()["usage"]["candidates"] == 2


async def test_greedy_branching_is_judged_on_the_width_asked_for() -> None:
    engine = ScriptedEngine(foresight_script, max_model_len=2048)
    async with running_app(engine, max_n=1) as client:  # the default width 4 would be lowered to 1
        r = await client.post("/v1/plan", json={"prompt": "obs", "temperature": 0})
        assert r.status_code == 400 and r.json()["error"]["code"] == "greedy_branching"


async def test_a_growing_round_is_held_to_max_n() -> None:
    """width_growth multiplies rounds past the width the limit checks: the largest round must fit max_n."""
    engine = ScriptedEngine(foresight_script, max_model_len=2048)
    async with running_app(engine, max_n=4, max_plan_candidates=16) as client:
        body = {"prompt": "obs", "algorithm": "branch_commit", "commit_threshold": 1.0,
                "budget": {"max_candidates": 15}}
        wide = await client.post("/v1/plan", json={**body, "width": 2, "width_growth": 4})  # 2, then 8
        assert wide.status_code == 400, wide.text
        err = wide.json()["error"]
        assert err["code"] == "round_too_wide" and err["param"] == "width_growth" and "8 spans" in err["message"]
        ok = await client.post("/v1/plan", json={**body, "width": 1, "width_growth": 2,
                                                  "budget": {"max_candidates": 7}})
        assert ok.status_code == 200, ok.text  # 1, 2, 4
        assert max(n for n in (r.n for r in engine.requests) if n > 1) <= 4


def test_largest_round_follows_the_rounds_the_planner_draws() -> None:
    from planner.search import Algorithm, largest_round

    def cfg(width: int, growth: int, cap: int) -> PlanConfig:
        return PlanConfig(algorithm=Algorithm.BRANCH_COMMIT, width=width, width_growth=growth,
                          budget=Budget(max_candidates=cap))

    assert largest_round(cfg(2, 1, 16)) == 2
    assert largest_round(cfg(1, 2, 15)) == 8  # 1, 2, 4, 8
    assert largest_round(cfg(2, 2, 10)) == 4  # 2, 4, then the 4 left
    assert largest_round(cfg(1, 2, 6)) == 3  # 1, 2, then 3 of 4
