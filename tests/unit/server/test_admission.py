"""Admission runs after authentication, counts engine sequences (not requests) and keeps per-key counts;
every route that generates declares it."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.routing import APIRoute

from engine.scripted import ScriptedEngine
from server.admission import Admission, sequences_of
from server.app import create_app, services_of
from server.deps import get_generation, get_planning
from server.guards import admitted
from tests.unit.server.conftest import running_app, settings


@pytest.mark.parametrize(("body", "sequences"), [
    ({"messages": [], "n": 3}, 3), ({"messages": []}, 1), ({"prompt": ["a", "b"], "n": 2}, 4),
    ({"prompt": [1, 2, 3]}, 1), ({"prompt": "x", "n": "many"}, 1), ({"prompt": "x", "n": True}, 1),
    ({"prompt": "x", "algorithm": "best_of_n", "width": 8}, 8), ({"prompt": "x", "algorithm": "greedy"}, 1),
    ({"prompt": "x", "algorithm": "lookahead", "width": 3, "branch": 2}, 6), ({"prompt": "x", "width": 5}, 5),
    (None, 1), ([1, 2], 1),
])
def test_a_request_counts_the_sequences_it_holds(body: object, sequences: int) -> None:
    assert sequences_of(body) == sequences


def test_admission_counts_sequences_per_key_and_admits_an_oversized_request_alone() -> None:
    a = Admission(running=4, queue=2)
    assert a.admit("app", 4) and a.admit("other", 2)
    assert (a.active, a.waiting, a.by_key) == (6, 2, {"app": 4, "other": 2})
    assert not a.admit("app", 1)
    a.release("app", 4)
    assert a.by_key == {"other": 2} and a.admit("app", 3)
    a.release("app", 3)
    a.release("other", 2)
    assert a.admit("big", 10) and not a.admit("app", 1)  # alone it runs; nothing fits beside it
    a.release("big", 10)
    assert (a.active, a.by_key) == (0, {})


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
    assert [r.path for r in generating if admitted not in calls(r.dependant)] == []


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
