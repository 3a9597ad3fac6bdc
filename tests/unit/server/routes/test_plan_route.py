"""/v1/plan with a scripted engine: shapes, validation, never a 500 on garbage output."""

from __future__ import annotations

import httpx
import pytest

from engine.base import GenerationRequest
from engine.scripted import ScriptedEngine
from tests.unit.server.conftest import running_app


def foresight_script(prompt: str, index: int, request: GenerationRequest) -> str:
    if prompt.endswith("</confidence>"):
        return "\n<think>t</think>\n<answer>go</answer>"
    conf = [40, 90, 70][index % 3]
    return (f"<imaginary>future {index}</imaginary>\n<confidence>{conf}%</confidence>\n"
            f"<think>t</think>\n<answer>a{index}</answer>")


@pytest.fixture
async def plan_client() -> httpx.AsyncClient:
    async with running_app(ScriptedEngine(foresight_script, max_model_len=2048)) as c:
        yield c


async def test_branch_commit_plan(plan_client: httpx.AsyncClient) -> None:
    r = await plan_client.post("/v1/plan", json={"prompt": "obs", "width": 3, "return_tree": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"] == "commit"
    assert body["confidence"] == {"raw": 0.9, "calibrated": 0.9}
    assert body["rollout"] == "future 1"
    assert body["action"]["kind"] == "answer"
    assert body["plan_id"].startswith("plan-")
    assert body["usage"]["candidates"] == 3 and body["usage"]["depth"] == 1
    assert len(body["tree"]) == 3


async def test_prefix_cache_use_is_reported_per_plan_and_counted(plan_client: httpx.AsyncClient) -> None:
    r = await plan_client.post("/v1/plan", json={"prompt": "obs", "width": 3})
    usage = r.json()["usage"]
    details = usage["prompt_tokens_details"]
    # the scripted engine has no prefix cache: nothing cached, but the continuation's prompt is counted apart
    assert details["cached_tokens"] == 0 and details["continuation_cached_tokens"] == 0
    assert 0 < details["continuation_prompt_tokens"] < usage["prompt_tokens"]
    text = (await plan_client.get("/metrics")).text
    counted = {line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("foresight_plan_prefix_cache_tokens_total{")}
    assert counted['call="continuation",kind="queried"'] == details["continuation_prompt_tokens"]
    assert counted['call="proposal",kind="queried"'] == usage["prompt_tokens"] - details["continuation_prompt_tokens"]
    assert counted['call="proposal",kind="cached"'] == 0


async def test_cached_prompt_tokens_reach_the_plan_usage_and_the_metric() -> None:
    async with running_app(ScriptedEngine(foresight_script, max_model_len=2048, cache_block=4)) as c:
        first = (await c.post("/v1/plan", json={"prompt": "observation x=6", "width": 3})).json()["usage"]
        again = (await c.post("/v1/plan", json={"prompt": "observation x=6", "width": 3})).json()["usage"]
        text = (await c.get("/metrics")).text
    details = first["prompt_tokens_details"]
    # the continuation re-sends the prompt and the committed span, which the proposal call generated
    assert details["continuation_cached_tokens"] == (details["continuation_prompt_tokens"] - 1) // 4 * 4 > 0
    assert details["cached_tokens"] == details["continuation_cached_tokens"], "a first prompt finds nothing"
    assert again["prompt_tokens_details"]["cached_tokens"] > details["cached_tokens"], "the same prompt again hits"
    cached = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                 if line.startswith("foresight_plan_prefix_cache_tokens_total{") and 'kind="cached"' in line)
    assert cached == details["cached_tokens"] + again["prompt_tokens_details"]["cached_tokens"]


async def test_messages_and_greedy(plan_client: httpx.AsyncClient) -> None:
    r = await plan_client.post("/v1/plan", json={"messages": [{"role": "user", "content": "obs"}],
                                                 "algorithm": "greedy"})
    assert r.status_code == 200
    assert r.json()["usage"]["candidates"] == 1


@pytest.mark.parametrize(("rounds", "threshold", "roots"), [(1, 0.95, 2), (3, 0.95, 6), (3, 0.5, 2)])
async def test_lookahead_root_rounds_widen_only_below_the_threshold(plan_client: httpx.AsyncClient, rounds: int,
                                                                    threshold: float, roots: int) -> None:
    # width 2 draws 40% and 90%: below 0.95 every round is drawn; 0.9 reaches 0.5 after the first
    r = await plan_client.post("/v1/plan", json={
        "prompt": "obs", "algorithm": "lookahead", "width": 2, "root_rounds": rounds, "commit_threshold": threshold,
        "budget": {"max_depth": 1}})
    assert r.status_code == 200, r.text
    assert sum(c["depth"] == 1 for c in r.json()["candidates"]) == roots


@pytest.mark.parametrize(
    ("body", "field"),
    [({"prompt": "p", "algorithm": "mcts"}, "algorithm"),
     ({"prompt": "p", "commit_threshold": 1.2}, "commit_threshold"),
     ({"prompt": "p", "margin": -1}, "margin"),
     ({"prompt": "p", "discount": 2}, "discount"),
     ({"prompt": "p", "root_rounds": 0}, "root_rounds"),
     ({"prompt": "p", "budget": {"max_tokens": -5}}, "budget.max_tokens"),
     ({"prompt": "p", "budget": {"deadline_s": 0}}, "budget.deadline_s"),
     ({"prompt": "p", "messages": [{"role": "user", "content": "x"}]}, "messages"),
     ({}, "prompt"),
     ({"prompt": "p", "seed": -(2**63) - 1}, "seed")],
)
async def test_bad_plan_parameters_are_400_naming_the_field(plan_client: httpx.AsyncClient, body: dict,
                                                           field: str) -> None:
    r = await plan_client.post("/v1/plan", json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert field in (err["param"] or "") or field in err["message"]


async def test_garbage_output_is_a_candidate_with_problems_not_a_500() -> None:
    async with running_app(ScriptedEngine(lambda p, i, r: "\x00garbage<<<", max_model_len=2048)) as c:
        r = await c.post("/v1/plan", json={"prompt": "obs", "algorithm": "best_of_n", "width": 2})
        assert r.status_code == 200
        body = r.json()
        assert body["action"] is None
        assert all(cand["problems"] for cand in body["candidates"])


async def test_greedy_branching_is_refused(plan_client: httpx.AsyncClient) -> None:
    r = await plan_client.post("/v1/plan", json={"prompt": "p", "algorithm": "branch_commit", "temperature": 0})
    assert r.status_code == 400 and r.json()["error"]["param"] == "temperature"
    ok = await plan_client.post("/v1/plan", json={"prompt": "p", "algorithm": "greedy", "temperature": 0})
    assert ok.status_code == 200


async def test_a_plan_past_its_deadline_is_504_and_its_generation_aborted(monkeypatch: pytest.MonkeyPatch) -> None:
    from server.services import planning

    monkeypatch.setattr(planning, "PLAN_GRACE_S", 0.2)
    engine = ScriptedEngine(foresight_script, max_model_len=2048, delay_s=0.05)  # ~4 s a turn
    async with running_app(engine) as client:
        r = await client.post("/v1/plan", json={"prompt": "obs", "width": 2, "budget": {"deadline_s": 0.1}})
        assert r.status_code == 504, r.text
        assert "deadline" in r.json()["error"]["message"]
        assert engine.aborted and not engine.running


async def test_spans_not_continued_say_so_and_are_no_parse_problem(plan_client: httpx.AsyncClient) -> None:
    r = await plan_client.post("/v1/plan", json={"prompt": "obs", "width": 3, "return_tree": True})
    body = r.json()
    by_id = {c["id"]: c for c in body["candidates"]}
    assert [c["continued"] for c in body["candidates"]] == [False, True, False]  # the 90% span was committed
    assert all(not c["problems"] for c in body["candidates"]), body["candidates"]
    assert by_id[1]["action"]["kind"] == "answer"
    assert [n["continued"] for n in body["tree"]] == [False, True, False]
    metrics = (await plan_client.get("/metrics")).text
    assert 'foresight_parse_problems_total{kind="missing_action"} 0.0' in metrics
