"""Agents on the real server and the reference model, through real clients: one observation gives the same
prompt and the same action as a chat turn, a tool round trip and a plan; the OpenAI Agents SDK plays
NumberReach episodes through tool calls and reaches the success of the same episodes through /v1/plan
(greedy); LangChain's ChatOpenAI makes a tool round trip."""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import Callable

import httpx
import openai
import pytest

from reference import numberreach as env
from tests.integration.conftest import served_model
from tests.integration.server_process import ServerProcess

pytestmark = pytest.mark.integration
APPLY = {"type": "function", "function": {"name": "apply", "description": "Apply one operation to x.", "parameters": {
    "type": "object", "properties": {"op": {"type": "string", "enum": list(env.OPS)}}, "required": ["op"]}}}
OBS = "x=6 target=40 steps=5"
EPISODES = 16  # held-out starts, each with its own seed; played both ways


def _obs(state: env.State) -> str:
    return f"x={state.x} target={state.t} steps={state.n}"


def _op(call: dict | None) -> str | None:  # type: ignore[type-arg]
    if not call:
        return None
    args = call["function"]["arguments"]
    return str(json.loads(args).get("op")) if call["function"]["name"] == "apply" else None


def test_one_observation_three_ways_same_prompt_and_action(server: ServerProcess) -> None:
    """A chat turn, a tool round trip and /v1/plan (greedy) see the same prompt — its length is the usage's
    prompt_tokens; the token ids themselves are checked in tests/unit/reference/test_chat_template.py — and at
    temperature 0 take the same action."""
    call = {"id": "call_0", "type": "function", "function": {"name": "apply", "arguments": '{"op": "+1"}'}}
    turn = [{"role": "user", "content": OBS}]
    trip = [{"role": "system", "content": "Play NumberReach."}, {"role": "user", "content": "x=5 target=40 steps=6"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_0", "content": OBS}]
    with httpx.Client(base_url=server.url, timeout=120) as c:
        chats = [c.post("/v1/chat/completions", json={"messages": m, "tools": [APPLY], "temperature": 0,
                                                      "max_tokens": 120}).json() for m in (turn, trip)]
        plan = c.post("/v1/plan", json={"messages": turn, "tools": [APPLY], "algorithm": "greedy",
                                        "temperature": 0}).json()
    prompts = [r["usage"]["prompt_tokens"] for r in chats] + [plan["usage"]["prompt_tokens"]]
    assert len(set(prompts)) == 1, prompts
    ops = [_op((r["choices"][0]["message"]["tool_calls"] or [None])[0]) for r in chats]
    ops.append(_op(plan["message"]["tool_calls"][0]))
    assert ops[0] in env.OPS and ops == [ops[0]] * 3, ops


def _plan_episode(client: httpx.Client, start: env.State, seed: int) -> bool:
    state, rng = start, random.Random(seed)
    while not state.done:
        plan = client.post("/v1/plan", json={"messages": [{"role": "user", "content": _obs(state)}],
                                             "tools": [APPLY], "algorithm": "greedy", "temperature": 0}).json()
        op = _op(((plan.get("message") or {}).get("tool_calls") or [None])[0])
        if op not in env.OPS:
            return False
        state = env.step(state, op, rng).state
    return state.success


async def _agent_episode(base_url: str, model: str, start: env.State, seed: int) -> bool:
    os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"
    from agents import (  # type: ignore[import-not-found]
        Agent,
        ModelSettings,
        OpenAIChatCompletionsModel,
        RunConfig,
        Runner,
        ToolsToFinalOutputResult,
        function_tool,
    )

    state, rng = start, random.Random(seed)
    broken = False

    @function_tool
    def apply(op: str) -> str:
        """Apply one operation (+1, +2, *2, *3 or -1) to x."""
        nonlocal state, broken
        if op not in env.OPS:
            broken = True
            return "episode over"
        state = env.step(state, op, rng).state
        return _obs(state)

    def until_done(_: object, __: object) -> ToolsToFinalOutputResult:
        over = state.done or broken
        return ToolsToFinalOutputResult(is_final_output=over, final_output=_obs(state) if over else None)

    client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0)
    agent = Agent(name="numberreach", instructions="Reach the target.", tools=[apply],
                  model=OpenAIChatCompletionsModel(model=model, openai_client=client),
                  model_settings=ModelSettings(temperature=0, max_tokens=120), tool_use_behavior=until_done)
    await Runner.run(agent, _obs(state), max_turns=env.HORIZON + 2, run_config=RunConfig(tracing_disabled=True))
    await client.close()
    return state.success and not broken


def _success(play: Callable[[env.State, int], bool], starts: list[env.State]) -> list[bool]:
    return [play(s, 1000 + i) for i, s in enumerate(starts)]


def test_agents_sdk_episodes_match_plan_greedy(server: ServerProcess) -> None:
    starts = random.Random(7).sample(env.start_states(heldout=True), EPISODES)
    model = served_model().name
    with httpx.Client(base_url=server.url, timeout=120) as c:
        via_plan = _success(lambda s, seed: _plan_episode(c, s, seed), starts)
    via_agent = _success(lambda s, seed: asyncio.run(_agent_episode(server.url, model, s, seed)), starts)
    print(f"\nNumberReach, {EPISODES} held-out episodes: Agents SDK tool calls {sum(via_agent)}/{EPISODES}, "
          f"/v1/plan greedy {sum(via_plan)}/{EPISODES}")
    assert sum(via_plan) > EPISODES // 2, via_plan  # the shipped model is far better than chance
    assert via_agent == via_plan, (f"tool calls {sum(via_agent)}/{EPISODES} vs plan {sum(via_plan)}/{EPISODES}",
                                   via_agent, via_plan)


def test_langchain_tool_round_trip(server: ServerProcess) -> None:
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    state, rng = env.State(6, 40, 5), random.Random(3)

    @tool
    def apply(op: str) -> str:
        """Apply one operation (+1, +2, *2, *3 or -1) to x."""
        nonlocal state
        state = env.step(state, op, rng).state
        return _obs(state)

    llm = ChatOpenAI(base_url=f"{server.url}/v1", api_key="unused", model=served_model().name, temperature=0,
                     max_tokens=120, max_retries=0).bind_tools([apply])
    messages: list = [HumanMessage(_obs(state))]  # type: ignore[type-arg]
    first = llm.invoke(messages)
    [call] = first.tool_calls
    assert call["name"] == "apply" and call["args"]["op"] in env.OPS
    messages += [first, ToolMessage(apply.invoke(call["args"]), tool_call_id=call["id"])]
    second = llm.invoke(messages)
    assert second.tool_calls and second.tool_calls[0]["args"]["op"] in env.OPS
    assert "foresight" in second.response_metadata or second.tool_calls  # the extension never breaks the client


def test_a_named_tool_choice_is_enforced_by_decoding(server: ServerProcess) -> None:
    """The reference model only ever calls ``apply``; asked for ``jump``, constrained decoding makes it call
    ``jump`` with arguments its schema accepts, and its foresight before the call stays its own."""
    jump = {"type": "function", "function": {"name": "jump", "parameters": {
        "type": "object", "properties": {"to": {"type": "integer", "minimum": 0, "maximum": 999}},
        "required": ["to"], "additionalProperties": False}}}
    body = {"messages": [{"role": "user", "content": OBS}], "tools": [APPLY, jump], "temperature": 0,
            "max_tokens": 120}
    with httpx.Client(base_url=server.url, timeout=120) as c:
        free = c.post("/v1/chat/completions", json=body).json()["choices"][0]
        forced = c.post("/v1/chat/completions", json={
            **body, "tool_choice": {"type": "function", "function": {"name": "jump"}}}).json()["choices"][0]
        required = c.post("/v1/chat/completions", json={**body, "tool_choice": "required"}).json()["choices"][0]
        planned = c.post("/v1/plan", json={
            "messages": body["messages"], "tools": [APPLY, jump], "algorithm": "greedy", "temperature": 0,
            "max_tokens_per_turn": 120, "tool_choice": {"type": "function", "function": {"name": "jump"}}}).json()
    assert free["message"]["tool_calls"][0]["function"]["name"] == "apply"
    assert forced["finish_reason"] == "tool_calls", forced
    [call] = forced["message"]["tool_calls"]
    assert call["function"]["name"] == "jump" and 0 <= json.loads(call["function"]["arguments"])["to"] <= 999
    assert forced["foresight"]["rollout"] == free["foresight"]["rollout"]  # the same free foresight before it
    # /v1/plan takes tool_choice as chat does: its action is constrained to the named tool too
    [plan_call] = planned["message"]["tool_calls"]
    assert planned["finish_reason"] == "tool_calls" and plan_call["function"]["name"] == "jump", planned
    assert 0 <= json.loads(plan_call["function"]["arguments"])["to"] <= 999
    # required, where the model calls anyway: the same call as unconstrained
    assert required["message"]["tool_calls"][0]["function"] == free["message"]["tool_calls"][0]["function"]
