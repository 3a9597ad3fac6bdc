"""Multi-turn tool use with a scripted engine: an assistant's ``tool_calls`` and the ``tool`` messages that
answer them reach the chat template as they were sent; a ``tool`` message must answer an earlier call; and
``/v1/plan`` takes the same ``tools`` and returns its action as an OpenAI assistant message."""

from __future__ import annotations

import json

import pytest

from engine.scripted import ScriptedEngine
from tests.unit.server.conftest import running_app
from tests.unit.server.routes.test_tool_calls import APPLY, SEARCH, script

CALL = {"id": "call_1", "type": "function", "function": {"name": "apply", "arguments": '{"op": "*2"}'}}


def round_trip(**tool: object) -> list[dict[str, object]]:
    return [{"role": "user", "content": "x=3 target=12 steps=4"},
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "x=6 target=12 steps=3", **tool}]


async def test_a_tool_round_trip_reaches_the_template_unchanged() -> None:
    engine = ScriptedEngine(script, max_model_len=2048)
    async with running_app(engine) as c:
        r = await c.post("/v1/chat/completions", json={"messages": round_trip(), "tools": [APPLY], "max_tokens": 200})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["finish_reason"] == "tool_calls"
    prompt = engine.decode(engine.requests[-1].prompt_token_ids)
    # the call's arguments reach the template as an object, the tool's answer as it was sent
    assert 'assistant:  call apply {"op": "*2"}\n' in prompt
    assert "tool (to call_1): x=6 target=12 steps=3\n" in prompt


@pytest.mark.parametrize(("messages", "param"), [
    (round_trip(tool_call_id=None), "messages.2.tool_call_id"),
    (round_trip(tool_call_id="call_9"), "messages.2.tool_call_id"),
    ([{"role": "tool", "tool_call_id": "call_1", "content": "x"}], "messages.0.tool_call_id"),
    ([{"role": "user", "content": "x", "tool_calls": [CALL]}], "messages.0.tool_calls"),
])
async def test_a_tool_message_must_answer_an_earlier_call(messages: list[dict[str, object]], param: str) -> None:
    async with running_app(ScriptedEngine(script, max_model_len=2048)) as c:
        for route, body in (("/v1/chat/completions", {"messages": messages, "max_tokens": 20}),
                            ("/v1/plan", {"messages": messages, "algorithm": "greedy"})):
            r = await c.post(route, json=body)
            assert r.status_code == 400, (route, r.text)
            assert r.json()["error"]["param"] == param, route


async def test_plan_returns_its_action_as_a_tool_call() -> None:
    async with running_app(ScriptedEngine(script, max_model_len=2048)) as c:
        r = await c.post("/v1/plan", json={"messages": round_trip(), "tools": [APPLY, SEARCH],
                                           "algorithm": "greedy"})
        plain = await c.post("/v1/plan", json={"messages": round_trip(), "algorithm": "greedy"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["finish_reason"] == "tool_calls"
    [call] = body["message"]["tool_calls"]
    assert call["function"]["name"] == body["action"]["name"] == "apply"
    assert json.loads(call["function"]["arguments"]) == body["action"]["arguments"] == {"op": "*2"}
    assert body["foresight"] == {"rollout": "x doubles", "confidence": 0.8, "problems": []}
    assert plain.json()["message"] is None and plain.json()["foresight"] is None


async def test_plan_with_a_named_tool_choice_reports_the_missing_call() -> None:
    async with running_app(ScriptedEngine(script, max_model_len=2048)) as c:
        r = await c.post("/v1/plan", json={"messages": round_trip(), "tools": [APPLY, SEARCH], "algorithm": "greedy",
                                           "tool_choice": {"type": "function", "function": {"name": "search"}}})
    assert r.status_code == 200, r.text
    assert r.json()["message"]["tool_calls"] is None
    assert "tool_call_missing" in [p["kind"] for p in r.json()["foresight"]["problems"]]
