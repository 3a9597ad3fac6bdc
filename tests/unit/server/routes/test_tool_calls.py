"""Tool calling on /v1/chat/completions with a scripted engine: a foresight turn's action as OpenAI's
``tool_calls``, its foresight beside it, and every way a call can be wrong."""

from __future__ import annotations

import json

import httpx
import pytest

from engine.base import GenerationRequest
from engine.scripted import ScriptedEngine
from tests.unit.server.conftest import running_app

APPLY = {"type": "function", "function": {"name": "apply", "description": "apply one operation", "parameters": {
    "type": "object", "properties": {"op": {"type": "string", "enum": ["+1", "*2"]}}, "required": ["op"]}}}
SEARCH = {"type": "function", "function": {"name": "search", "parameters": {
    "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}
ACTIONS = {
    "call": '<tool_call>{"name": "apply", "arguments": {"op": "*2"}}</tool_call>',
    "undeclared": '<tool_call>{"name": "jump", "arguments": {}}</tool_call>',
    "badargs": '<tool_call>{"name": "apply", "arguments": {"op": "/7"}}</tool_call>',
    "notjson": "<tool_call>apply *2</tool_call>",
    "search": "<search>capital of France</search>",
    "answer": "<answer>Paris</answer>",
}


def script(prompt: str, index: int, request: GenerationRequest) -> str:
    kind = next((k for k in ACTIONS if f"[{k}]" in prompt), "call")
    return f"<imaginary>x doubles</imaginary>\n<confidence>80%</confidence>\n<think>go</think>\n{ACTIONS[kind]}"


def chat(kind: str, **kw: object) -> dict:
    return {"model": "scripted", "messages": [{"role": "user", "content": f"obs [{kind}]"}], "max_tokens": 200,
            "tools": [APPLY, SEARCH], **kw}


@pytest.fixture
async def client() -> httpx.AsyncClient:
    async with running_app(ScriptedEngine(script, max_model_len=2048)) as c:
        yield c


async def test_a_tool_call_becomes_tool_calls_with_foresight_beside(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json=chat("call"))
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_") and call["function"]["name"] == "apply"
    assert json.loads(call["function"]["arguments"]) == {"op": "*2"}
    assert choice["message"]["content"] is None  # nothing outside the tags
    assert choice["foresight"] == {"rollout": "x doubles", "confidence": 0.8, "problems": []}


@pytest.mark.parametrize(("kind", "problem"), [("undeclared", "undeclared_tool"),
                                               ("badargs", "invalid_tool_arguments"),
                                               ("notjson", "invalid_tool_call")])
async def test_a_wrong_call_never_reaches_the_app_as_a_call(client: httpx.AsyncClient, kind: str,
                                                            problem: str) -> None:
    choice = (await client.post("/v1/chat/completions", json=chat(kind))).json()["choices"][0]
    assert choice["message"]["tool_calls"] is None and choice["finish_reason"] != "tool_calls"
    assert problem in [p["kind"] for p in choice["foresight"]["problems"]]


async def test_search_calls_the_declared_search_tool_and_an_answer_is_content(client: httpx.AsyncClient) -> None:
    search = (await client.post("/v1/chat/completions", json=chat("search"))).json()["choices"][0]
    assert json.loads(search["message"]["tool_calls"][0]["function"]["arguments"]) == {"query": "capital of France"}
    answer = (await client.post("/v1/chat/completions", json=chat("answer"))).json()["choices"][0]
    assert answer["message"] == {"role": "assistant", "content": "Paris", "tool_calls": None}
    no_search = (await client.post("/v1/chat/completions", json=chat("search", tools=[APPLY]))).json()["choices"][0]
    assert no_search["message"]["tool_calls"] is None


@pytest.mark.parametrize(("choice", "called", "problem"), [
    ("none", False, "tool_choice_none"),
    ("required", True, None),
    ({"type": "function", "function": {"name": "search"}}, False, "tool_call_missing"),
    ({"type": "function", "function": {"name": "apply"}}, True, None),
])
async def test_tool_choice(client: httpx.AsyncClient, choice: object, called: bool, problem: str | None) -> None:
    got = (await client.post("/v1/chat/completions", json=chat("call", tool_choice=choice))).json()["choices"][0]
    assert (got["message"]["tool_calls"] is not None) is called
    kinds = [p["kind"] for p in got["foresight"]["problems"]]
    assert (problem in kinds) if problem else kinds == []


async def test_without_tools_the_answer_is_as_before(client: httpx.AsyncClient) -> None:
    body = (await client.post("/v1/chat/completions", json={**chat("call"), "tools": None})).json()
    assert "foresight" not in body["choices"][0] and "tool_calls" not in body["choices"][0]["message"]
    assert "<tool_call>" in body["choices"][0]["message"]["content"]


async def test_the_tools_reach_the_chat_template() -> None:
    engine = ScriptedEngine(script, max_model_len=2048)
    async with running_app(engine) as c:
        await c.post("/v1/chat/completions", json=chat("call"))
    assert engine.decode(engine.requests[-1].prompt_token_ids).startswith("tools: apply, search\n")


async def test_a_streamed_call_arrives_as_openai_sends_it(client: httpx.AsyncClient) -> None:
    async with client.stream("POST", "/v1/chat/completions", json=chat("call", stream=True)) as r:
        events = [json.loads(line[6:]) async for line in r.aiter_lines() if line.startswith("data: {")]
    deltas = [e["choices"][0] for e in events]
    calls = [d["delta"]["tool_calls"][0] for d in deltas if "tool_calls" in d["delta"]]
    assert calls[0]["id"].startswith("call_") and calls[0]["function"]["name"] == "apply"
    assert len(calls) >= 2 and json.loads("".join(c["function"]["arguments"] for c in calls)) == {"op": "*2"}
    last = deltas[-1]
    assert last["finish_reason"] == "tool_calls" and last["foresight"]["confidence"] == 0.8


@pytest.mark.parametrize(("extra", "param"), [
    ({"tool_choice": "required", "tools": None}, "tool_choice"),
    ({"tool_choice": {"type": "function", "function": {"name": "fly"}}}, "tool_choice"),
    ({"tools": [APPLY, APPLY]}, "tools"),
    ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools.0.function.name"),
    ({"tools": [{"type": "function", "function": {"parameters": {}}}]}, "tools.0.function.name"),
    ({"tools": [{"type": "function", "function": {"name": "x", "parameters": "not a schema"}}]},
     "tools.0.function.parameters"),
    ({"tools": [{"type": "function", "function": {"name": "x", "parameters": {"type": 5}}}]},
     "tools.0.function.parameters"),
    ({"tool_choice": "sometimes"}, "tool_choice"),
])
async def test_bad_tools_are_400_naming_the_field(client: httpx.AsyncClient, extra: dict, param: str) -> None:
    r = await client.post("/v1/chat/completions", json={**chat("call"), **extra})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert param in (err["param"] or "") or param in err["message"]


async def test_a_schema_that_cannot_be_applied_is_a_problem_not_a_500(client: httpx.AsyncClient) -> None:
    broken = {"type": "function", "function": {"name": "apply", "parameters": {"$ref": "#/$defs/nothing"}}}
    r = await client.post("/v1/chat/completions", json=chat("call", tools=[broken]))
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["message"]["tool_calls"] is None
    assert [p["kind"] for p in choice["foresight"]["problems"]] == ["invalid_tool_arguments"]


@pytest.mark.parametrize(("choice", "names"), [
    ("required", ["apply", "search"]),
    ({"type": "function", "function": {"name": "apply"}}, ["apply"]),
    ("auto", None),
    ("none", None),
])
async def test_a_required_call_constrains_only_the_call(choice: object, names: list[str] | None) -> None:
    engine = ScriptedEngine(script, max_model_len=2048)
    async with running_app(engine) as c:
        r = await c.post("/v1/chat/completions", json=chat("call", tool_choice=choice))
    assert r.status_code == 200, r.text
    structured = engine.requests[-1].structured
    if names is None:
        assert structured is None
        return
    assert structured is not None and structured.structural_tag is not None
    free, calls = structured.structural_tag["format"]["elements"]
    assert free["type"] == "any_text" and "<tool_call>" in free["excludes"]  # the foresight stays free text
    assert free["max_tokens"] == 200 - 64  # the call keeps room before max_tokens (200 here)
    begins = [t["begin"] for t in calls["elements"]]
    assert begins[:2 * len(names)] == [f'<tool_call>{nl}{{"name": "{n}", "arguments": ' for n in names
                                       for nl in ("", "\n")]
    schema = calls["elements"][0]["content"]["json_schema"]
    assert json.dumps(schema) == json.dumps(APPLY["function"]["parameters"])  # as declared, key order kept
    assert ("<search>" in begins) is ("search" in names)
    import xgrammar  # the tag compiles as vLLM's xgrammar backend will compile it

    assert xgrammar.Grammar.from_structural_tag(json.dumps(structured.structural_tag)) is not None


async def test_response_format_and_a_required_call_are_400(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json=chat("call", tool_choice="required",
                                                            response_format={"type": "json_object"}))
    assert r.status_code == 400 and r.json()["error"]["param"] == "response_format", r.text


async def test_n_streamed_calls_arrive_each_under_its_own_choice(client: httpx.AsyncClient) -> None:
    async with client.stream("POST", "/v1/chat/completions", json=chat("call", stream=True, n=2)) as r:
        events = [json.loads(line[6:]) async for line in r.aiter_lines() if line.startswith("data: {")]
    for index in (0, 1):
        deltas = [e["choices"][0] for e in events if e["choices"] and e["choices"][0]["index"] == index]
        args = "".join(d["delta"]["tool_calls"][0]["function"]["arguments"] for d in deltas
                       if "tool_calls" in d["delta"])
        assert json.loads(args) == {"op": "*2"} and deltas[-1]["finish_reason"] == "tool_calls"


def span_script(prompt: str, index: int, request: GenerationRequest) -> str:
    if prompt.endswith("</confidence>"):
        return f"\n<think>go</think>\n{ACTIONS['call']}"
    return script(prompt, index, request)


@pytest.mark.parametrize("algorithm", ["branch_commit", "best_of_n", "greedy"])
async def test_tool_choice_means_the_same_on_plan_as_on_chat(algorithm: str) -> None:
    """required: every call that ends a turn in its action is constrained to a call of a declared tool; the
    world-model spans branch_commit judges stay free."""
    body = {"messages": [{"role": "user", "content": "obs [call]"}], "tools": [APPLY, SEARCH],
            "tool_choice": "required", "algorithm": algorithm, "width": 2, "commit_threshold": 0.5}
    requests = {}
    for choice in ("required", "auto"):
        engine = ScriptedEngine(span_script, max_model_len=2048)
        async with running_app(engine) as c:
            r = await c.post("/v1/plan", json={**body, "tool_choice": choice})
        assert r.status_code == 200, r.text
        plan = r.json()
        assert plan["finish_reason"] == "tool_calls" and plan["message"]["tool_calls"][0]["function"]["name"] == "apply"
        requests[choice] = [q for q in engine.requests if q.include_stop_str_in_output]  # the plan's, not warm-up
    calls = requests["required"]
    ends_in_action = [q for q in calls if "</confidence>" not in q.stop]
    spans = [q for q in calls if "</confidence>" in q.stop]
    assert ends_in_action and all(q.structured is not None and q.structured.structural_tag for q in ends_in_action)
    assert all(q.structured is None for q in spans)
    assert bool(spans) is (algorithm == "branch_commit")
    assert requests["auto"] and all(q.structured is None for q in requests["auto"])  # auto: nothing constrained
