"""``/v1/responses`` with a scripted engine: input items become the chat the template renders, the turn comes
back as Responses output items, streams send the Responses event types, and unserved values are 400s."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from engine.scripted import ScriptedEngine
from tests.unit.server.conftest import running_app
from tests.unit.server.routes.test_tool_calls import script

APPLY = {"type": "function", "name": "apply", "parameters": {
    "type": "object", "properties": {"op": {"type": "string", "enum": ["+1", "*2"]}}, "required": ["op"]}}


@pytest.fixture
async def engine() -> ScriptedEngine:
    return ScriptedEngine(script, max_model_len=2048)


@pytest.fixture
async def client(engine: ScriptedEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(engine) as c:
        yield c


async def test_a_string_input_is_a_user_turn(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
    r = await client.post("/v1/responses", json={"input": "obs [answer]", "instructions": "be brief",
                                                 "max_output_tokens": 200, "metadata": {"app": "t"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "response" and body["id"].startswith("resp_") and body["status"] == "completed"
    [item] = body["output"]
    assert item["type"] == "message" and item["content"][0]["type"] == "output_text"
    assert "<answer>Paris</answer>" in item["content"][0]["text"]  # without tools the turn is as written
    assert body["metadata"] == {"app": "t"} and body["store"] is False
    u = body["usage"]
    assert u["total_tokens"] == u["input_tokens"] + u["output_tokens"] and u["output_tokens"] > 0
    prompt = engine.decode(engine.requests[-1].prompt_token_ids)
    assert prompt.startswith("system: be brief\nuser: obs [answer]\n")


async def test_a_tool_call_is_a_function_call_item(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/responses", json={"input": "obs [call]", "tools": [APPLY], "max_output_tokens": 200})
    body = r.json()
    [call] = body["output"]
    assert call["type"] == "function_call" and call["name"] == "apply" and call["call_id"].startswith("call_")
    assert json.loads(call["arguments"]) == {"op": "*2"}
    assert body["foresight"]["confidence"] == 0.8 and body["tools"][0]["name"] == "apply"


async def test_function_call_items_and_outputs_are_the_history(client: httpx.AsyncClient,
                                                               engine: ScriptedEngine) -> None:
    items = [{"role": "user", "content": [{"type": "input_text", "text": "x=3"}]},
             {"type": "reasoning", "id": "rs_1", "summary": []},
             {"type": "function_call", "call_id": "c1", "name": "apply", "arguments": '{"op": "+1"}', "id": "fc_1"},
             {"type": "function_call_output", "call_id": "c1", "output": "x=4"}]
    r = await client.post("/v1/responses", json={"input": items, "tools": [APPLY], "max_output_tokens": 200})
    assert r.status_code == 200, r.text
    prompt = engine.decode(engine.requests[-1].prompt_token_ids)
    assert 'user: x=3\nassistant:  call apply {"op": "+1"}\ntool (to c1): x=4\n' in prompt


async def test_a_cut_turn_is_incomplete(client: httpx.AsyncClient) -> None:
    body = (await client.post("/v1/responses", json={"input": "obs [answer]", "max_output_tokens": 5})).json()
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["output"][0]["status"] == "incomplete"


@pytest.mark.parametrize(("extra", "param"), [
    ({"store": True}, "store"),
    ({"previous_response_id": "resp_1"}, "previous_response_id"),
    ({"background": True}, "background"),
    ({"input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]}, "input.0.call_id"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, "input"),
    ({"text": {"format": {"type": "json_schema", "name": "a", "schema": {"type": 5}}}}, "text.format.schema"),
    ({"tools": [{"type": "function", "name": "f", "parameters": {"type": 5}}]}, "tools.0.parameters"),
    ({"max_output_tokens": 0}, "max_output_tokens"),
    ({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}],
      "instructions": "x", "max_output_tokens": 10 ** 6}, "max_output_tokens"),
])
async def test_unserved_or_bad_values_are_400_naming_the_field(client: httpx.AsyncClient, extra: dict,
                                                              param: str) -> None:
    r = await client.post("/v1/responses", json={"input": "obs", **extra})
    assert r.status_code == 400, r.text
    assert (r.json()["error"]["param"] or "").startswith(param), r.json()


async def test_a_named_tool_choice_must_be_declared(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/responses", json={"input": "obs", "tools": [APPLY],
                                                 "tool_choice": {"type": "function", "name": "fly"}})
    assert r.status_code == 400 and "'fly'" in r.json()["error"]["message"], r.text


async def test_the_text_format_comes_back_as_sent(client: httpx.AsyncClient) -> None:
    from openai.types.responses import Response

    fmt = {"type": "json_schema", "name": "move", "schema": {"type": "object"}, "strict": True}
    r = await client.post("/v1/responses", json={"input": "obs", "text": {"format": fmt}, "max_output_tokens": 20})
    assert r.status_code == 200, r.text
    assert r.json()["text"]["format"]["schema"] == {"type": "object"}
    Response.model_validate(r.json())  # the official client's own model, strictly


async def test_deep_or_broken_arguments_are_never_a_500(client: httpx.AsyncClient) -> None:
    for arguments in ("[" * 100_000, "not json"):
        items = [{"role": "user", "content": "x"},
                 {"type": "function_call", "call_id": "c1", "name": "apply", "arguments": arguments},
                 {"type": "reasoning", "id": "rs_1", "summary": []},
                 {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "x=4"}]}]
        r = await client.post("/v1/responses", json={"input": items, "max_output_tokens": 20})
        assert r.status_code in (200, 400), r.text  # 400: the deep one is longer than the context
        assert r.status_code == 200 or r.json()["error"]["code"] == "context_length_exceeded"


async def test_unknown_fields_are_accepted(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/responses", json={"input": "obs [answer]", "include": [], "truncation": "auto",
                                                 "store": False, "max_output_tokens": 200})
    assert r.status_code == 200, r.text


async def _events(client: httpx.AsyncClient, body: dict) -> list[dict]:
    async with client.stream("POST", "/v1/responses", json={**body, "stream": True}) as r:
        lines = [line async for line in r.aiter_lines()]
    kinds = [line[7:] for line in lines if line.startswith("event: ")]
    data = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert kinds == [d["type"] for d in data] and "data: [DONE]" not in lines
    assert [d["sequence_number"] for d in data] == list(range(len(data)))
    return data


async def test_a_streamed_answer_sends_text_deltas(client: httpx.AsyncClient) -> None:
    data = await _events(client, {"input": "obs [answer]", "max_output_tokens": 200})
    kinds = [d["type"] for d in data]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    deltas = "".join(d["delta"] for d in data if d["type"] == "response.output_text.delta")
    final = data[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == deltas and kinds.count("response.output_text.delta") > 1
    assert final["id"] == data[0]["response"]["id"] and final["output"][0]["id"] == data[2]["item"]["id"]


async def test_a_streamed_call_sends_argument_deltas(client: httpx.AsyncClient) -> None:
    data = await _events(client, {"input": "obs [call]", "tools": [APPLY], "max_output_tokens": 200})
    added = next(d for d in data if d["type"] == "response.output_item.added")["item"]
    assert added["type"] == "function_call" and added["name"] == "apply" and added["arguments"] == ""
    args = "".join(d["delta"] for d in data if d["type"] == "response.function_call_arguments.delta")
    assert json.loads(args) == {"op": "*2"}
    final = data[-1]
    assert final["type"] == "response.completed" and final["response"]["output"][0]["arguments"] == args
    assert final["response"]["foresight"]["rollout"] == "x doubles"
