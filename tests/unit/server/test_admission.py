"""Admission runs after authentication, counts engine sequences (not requests) and keeps per-key counts;
every route that generates declares it, saying how its body counts."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.routing import APIRoute

from engine.scripted import ScriptedEngine
from planner.search import Budget, PlanConfig, largest_round
from server.admission import Admission, Claim, chat_sequences, completion_sequences, plan_sequences
from server.app import create_app, services_of
from server.deps import get_generation, get_planning
from server.guards import SequenceCount
from tests.unit.server.conftest import running_app, settings


@pytest.mark.parametrize(("count", "body", "sequences"), [
    (chat_sequences, {"messages": [], "n": 3}, 3), (chat_sequences, {"messages": []}, 1),
    (completion_sequences, {"prompt": ["a", "b"], "n": 2}, 2), (completion_sequences, {"prompt": [1, 2]}, 1),
    (chat_sequences, {"n": "many"}, 1), (chat_sequences, {"n": True}, 1), (chat_sequences, None, 1),
    (chat_sequences, {"n": 500}, 1),  # above max_n: the route's 400 must come first, not a 429
    (plan_sequences, {"prompt": "x"}, 8),  # the default: branch_commit, measured 1 doubling to 15: 1, 2, 4, 8
    (plan_sequences, {"algorithm": "self_consistency"}, 8),  # measured: 8 in one round
    (plan_sequences, {"algorithm": "self_consistency", "width": 2, "width_growth": 2, "budget": {"max_candidates": 8}},
     4),  # 2, 4, then the 2 left
    (plan_sequences, {"algorithm": "mcts"}, 1),
    (plan_sequences, {"algorithm": "best_of_n", "width": 8}, 8), (plan_sequences, {"algorithm": "greedy"}, 1),
    (plan_sequences, {"algorithm": "lookahead", "width": 3, "branch": 2}, 6),
    (plan_sequences, {"width": 2, "width_growth": 2, "budget": {"max_candidates": 14}}, 8),  # 2, 4, 8
    (plan_sequences, {"width": 2, "width_growth": 2}, 8),  # 2, 4, 8, 2 of 16
    (plan_sequences, {"width": 10_000}, 1), (plan_sequences, [1, 2], 1),
])
def test_a_request_counts_the_sequences_it_holds(count: SequenceCount, body: object, sequences: int) -> None:
    assert count(body, 16) == sequences


def test_the_plan_count_is_the_planners_own_largest_round() -> None:
    for width, growth, cap in [(1, 2, 15), (2, 2, 14), (3, 3, 40), (4, 1, 16), (5, 2, 9)]:
        config = PlanConfig(width=width, width_growth=growth, budget=Budget(max_candidates=cap))
        body = {"width": width, "width_growth": growth, "budget": {"max_candidates": cap}}
        assert plan_sequences(body, 64) == largest_round(config)


def test_admission_counts_sequences_per_key_and_admits_an_oversized_request_alone() -> None:
    a = Admission(running=4, queue=2)
    app4, other2 = Claim("app", 4), Claim("other", 2)
    assert a.admit(app4) is None and a.admit(other2) is None
    assert (a.active, a.waiting, a.by_key) == (6, 2, {"app": 4, "other": 2})
    assert a.admit(Claim("app", 1)) == "queue_full"
    a.release(app4)
    assert a.by_key == {"other": 2} and a.admit(Claim("app", 3)) is None
    a.release(Claim("app", 3))
    a.release(other2)
    assert a.admit(Claim("big", 10)) is None and a.admit(Claim("app", 1)) == "queue_full"  # alone it runs
    a.release(Claim("big", 10))
    assert (a.active, a.by_key, a.by_app) == (0, {}, {})


def test_every_generating_route_declares_admission() -> None:
    def calls(dependant: object) -> set[object]:
        found = {getattr(dependant, "call", None)}
        for sub in getattr(dependant, "dependencies", []):
            found |= calls(sub)
        return found

    app = create_app(settings(), ScriptedEngine(lambda p, i, r: "x"))
    generating = [r for r in app.routes if isinstance(r, APIRoute) and calls(r.dependant) & {get_generation,
                                                                                             get_planning}]
    assert {r.path for r in generating} >= {"/v1/chat/completions", "/v1/completions", "/v1/plan", "/v1/responses"}
    admitted = [r.path for r in generating if any(getattr(c, "admission", False) for c in calls(r.dependant))]
    assert sorted(admitted) == sorted(r.path for r in generating)


async def test_past_capacity_is_429_with_retry_after_and_the_count_is_released() -> None:
    engine = ScriptedEngine(lambda p, i, r: "y" * 40, delay_s=0.005)
    async with running_app(engine, max_num_seqs=2, max_queue=1) as client:
        admission = services_of(client.app).admission  # type: ignore[attr-defined]
        slow = asyncio.create_task(client.post("/v1/completions", json={"prompt": "x", "max_tokens": 40, "n": 3}))
        for _ in range(200):
            if admission.active:
                break
            await asyncio.sleep(0.005)
        assert admission.by_key == {"anonymous": 3}
        r = await client.post("/v1/completions", json={"prompt": "x", "max_tokens": 2})
        assert r.status_code == 429 and r.headers["retry-after"] == "1" and r.json()["error"]["code"] == "queue_full"
        assert (await slow).status_code == 200
        assert (admission.active, admission.by_key) == (0, {})
        assert (await client.post("/v1/completions", json={"prompt": "x", "max_tokens": 2})).status_code == 200


async def test_an_unauthenticated_request_is_401_before_admission_counts_it() -> None:
    async with running_app(ScriptedEngine(lambda p, i, r: "y"), auth_enabled=True) as client:
        admission = services_of(client.app).admission  # type: ignore[attr-defined]
        r = await client.post("/v1/completions", json={"prompt": "x", "max_tokens": 2})
        assert r.status_code == 401 and admission.active == 0 and admission.by_key == {}


def test_the_batch_class_holds_at_most_its_share_of_the_running_slots() -> None:
    a = Admission(running=8, queue=8, batch_share=0.5)  # batch may hold 4 of the 8 running slots
    assert a.batch_cap == 4

    def bulk(n: int) -> Claim:
        return Claim("bulk", n, batch=True)

    assert a.admit(bulk(3)) is None and a.admit(bulk(2)) == "batch_share_full"
    assert a.admit(bulk(1)) is None
    assert a.admit(Claim("chat", 8)) is None and a.admit(Claim("chat", 4)) is None  # interactive still fits
    assert a.admit(Claim("chat", 1)) == "queue_full"  # 16 of 16
    a.release(bulk(3))
    assert a.batch_active == 1 and a.admit(bulk(3)) is None and (a.batch_active, a.active) == (4, 16)
    solo = Admission(running=4, queue=0, batch_share=0.25)
    assert solo.batch_cap == 1 and solo.admit(Claim("bulk", 3, batch=True)) is None  # alone, it runs


def test_while_another_app_of_its_class_is_active_an_app_holds_its_weighted_share() -> None:
    now = [0.0]
    a = Admission(running=8, queue=24, recent_s=1.0, clock=lambda: now[0])
    assert all(a.admit(Claim("flood", 1, "flood")) is None for _ in range(20))  # alone, it takes what there is
    assert a.admit(Claim("small", 1, "small")) is None  # an app's first request is always a candidate
    assert a.fair_cap(Claim("flood", 1, "flood")) == 16  # 1 / (1 + 1) of the 32 slots (running and queue)
    assert a.admit(Claim("flood", 1, "flood")) == "fair_share_full"
    assert a.admit(Claim("small", 1, "small")) is None  # far below its share
    a.release(Claim("small", 2, "small"))
    assert a.admit(Claim("flood", 1, "flood")) is None  # nobody else is active: no cap
    assert a.admit(Claim("gold", 1, "gold", weight=3.0)) is None
    assert a.fair_cap(Claim("gold", 1, "gold", weight=3.0)) == 24  # 3 / (3 + 1) of 32
    assert a.fair_cap(Claim("flood", 1, "flood")) == 8
    # an app refused a moment ago still counts as waiting, for recent_s
    b = Admission(running=4, queue=0, recent_s=1.0, clock=lambda: now[0])
    assert b.admit(Claim("x", 4, "x")) is None and b.admit(Claim("y", 1, "y")) == "queue_full"
    b.release(Claim("x", 4, "x"))
    assert b.admit(Claim("x", 1, "x")) is None and b.fair_cap(Claim("x", 1, "x")) == 2
    now[0] = 2.0
    assert b.fair_cap(Claim("x", 1, "x")) is None  # y has not come back
    assert b.fair_cap(Claim("z", 1, "z", batch=True)) is None  # classes do not share


def test_keys_of_one_sharing_group_are_one_app() -> None:
    a = Admission(running=4, queue=2)
    assert a.admit(Claim("k1", 3, "shop")) is None and a.admit(Claim("k2", 1, "shop")) is None
    assert a.by_app == {(False, "shop"): 4} and a.by_key == {"k1": 3, "k2": 1}
    assert a.admit(Claim("other", 1, "other")) is None
    assert a.admit(Claim("k1", 1, "shop")) == "fair_share_full"  # the group holds 4 of its 3
