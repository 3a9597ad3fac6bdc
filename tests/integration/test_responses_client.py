"""The official openai client on /v1/responses and on a whole chat tool round trip, against the real server
and the reference model: every body validates strictly against the client's own models."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from reference import numberreach as env
from tests.integration.conftest import served_model
from tests.integration.server_process import ServerProcess

pytestmark = pytest.mark.integration
APPLY = {"type": "function", "name": "apply", "description": "Apply one operation to x.", "parameters": {
    "type": "object", "properties": {"op": {"type": "string", "enum": list(env.OPS)}}, "required": ["op"]}}
OBS = "x=6 target=40 steps=5"


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def test_responses_create_a_call_then_its_output(server: ServerProcess, client: openai.OpenAI) -> None:
    model = served_model().name
    first = client.responses.create(model=model, input=OBS, tools=[APPLY], temperature=0,  # type: ignore[list-item]
                                    max_output_tokens=120, instructions="Reach the target.")
    [call] = [o for o in first.output if o.type == "function_call"]
    assert call.name == "apply" and json.loads(call.arguments)["op"] in env.OPS
    assert first.status == "completed" and first.usage is not None and first.usage.output_tokens > 0
    items = [{"role": "user", "content": OBS}, call.model_dump(exclude_none=True),
             {"type": "function_call_output", "call_id": call.call_id, "output": "x=12 target=40 steps=4"}]
    raw = httpx.post(f"{server.url}/v1/responses", timeout=120, json={
        "model": model, "input": items, "tools": [APPLY], "temperature": 0, "max_output_tokens": 120})
    assert raw.status_code == 200, raw.text
    second = Response.model_validate(raw.json())  # strict: every field the client's model requires is there
    assert [o.type for o in second.output] == ["function_call"]


def test_responses_stream_through_the_clients_helper(client: openai.OpenAI) -> None:
    with client.responses.stream(model=served_model().name, input=OBS, tools=[APPLY],  # type: ignore[list-item]
                                 temperature=0, max_output_tokens=120) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.function_call_arguments.delta" in kinds
    [call] = [o for o in final.output if o.type == "function_call"]
    assert json.loads(call.arguments)["op"] in env.OPS

    with client.responses.stream(model=served_model().name, input=OBS, max_output_tokens=40,
                                 temperature=0) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        text = stream.get_final_response().output_text
    assert deltas and "".join(deltas) == text and "<imaginary>" in text


def test_responses_json_schema(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"op": {"type": "string", "enum": list(env.OPS)}},
              "required": ["op"], "additionalProperties": False}
    r = client.responses.create(model=served_model().name, input=OBS, max_output_tokens=40, temperature=0,
                                text={"format": {"type": "json_schema", "name": "move", "schema": schema,
                                                 "strict": True}})
    assert json.loads(r.output_text)["op"] in env.OPS


def test_chat_tool_round_trip_with_the_official_client(server: ServerProcess, client: openai.OpenAI) -> None:
    tool = {"type": "function", "function": {k: v for k, v in APPLY.items() if k != "type"}}
    messages: list = [{"role": "user", "content": OBS}]  # type: ignore[type-arg]
    first = client.chat.completions.create(model=served_model().name, messages=messages, tools=[tool],  # type: ignore[list-item]
                                           temperature=0, max_tokens=120)
    message = first.choices[0].message
    assert message.tool_calls, first
    call = message.tool_calls[0]
    messages += [message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "x=12 target=40 steps=4"}]
    raw = httpx.post(f"{server.url}/v1/chat/completions", timeout=120, json={
        "model": served_model().name, "messages": messages, "tools": [tool], "temperature": 0, "max_tokens": 120})
    second = ChatCompletion.model_validate(raw.json())
    assert second.choices[0].finish_reason == "tool_calls" and second.choices[0].message.tool_calls
