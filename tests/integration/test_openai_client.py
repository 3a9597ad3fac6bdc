"""The official openai client against the real server (vLLM on CPU)."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.integration.conftest import served_model
from tests.integration.server_process import ServerProcess

pytestmark = pytest.mark.integration
PROMPT = "<information>x=5 target=40 steps=6</information>\n"


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def model_id(client: openai.OpenAI) -> str:
    return client.models.list().data[0].id


def test_models(client: openai.OpenAI) -> None:
    models = client.models.list().data
    assert [m.id for m in models] == [served_model().name]


def test_chat_completion(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=model_id(client), messages=[{"role": "user", "content": PROMPT.strip()}],
                                       max_tokens=80, temperature=0)
    assert r.choices[0].message.content
    assert r.usage is not None and r.usage.completion_tokens > 0 and r.usage.prompt_tokens > 0
    assert r.choices[0].finish_reason in ("stop", "length")


def test_completion_greedy_is_deterministic(client: openai.OpenAI) -> None:
    a = client.completions.create(model=model_id(client), prompt=PROMPT, max_tokens=40, temperature=0)
    b = client.completions.create(model=model_id(client), prompt=PROMPT, max_tokens=40, temperature=0)
    assert a.choices[0].text == b.choices[0].text and a.choices[0].text


def test_n_greater_than_one(client: openai.OpenAI) -> None:
    r = client.completions.create(model=model_id(client), prompt=PROMPT, max_tokens=30, n=4, temperature=1, seed=1)
    assert sorted(c.index for c in r.choices) == [0, 1, 2, 3]
    assert r.usage is not None and r.usage.completion_tokens == r.usage.total_tokens - r.usage.prompt_tokens


def test_stop_strings(client: openai.OpenAI) -> None:
    full = client.completions.create(model=model_id(client), prompt=PROMPT, max_tokens=60, temperature=0)
    text = full.choices[0].text
    assert len(text) > 6
    stop = text[4:7]
    cut = client.completions.create(model=model_id(client), prompt=PROMPT, max_tokens=60, temperature=0, stop=[stop])
    assert cut.choices[0].text == text[: text.find(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_streaming_matches_non_streaming(client: openai.OpenAI) -> None:
    whole = client.completions.create(model=model_id(client), prompt=PROMPT, max_tokens=40, temperature=0)
    pieces = client.completions.create(model=model_id(client), prompt=PROMPT, max_tokens=40, temperature=0,
                                       stream=True)
    assert "".join(c.choices[0].text for c in pieces if c.choices) == whole.choices[0].text


def test_chat_streaming_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=model_id(client), messages=[{"role": "user", "content": PROMPT.strip()}], max_tokens=30,
        stream=True, stream_options={"include_usage": True}, temperature=0,
    )
    chunks = list(stream)
    text = "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
    assert text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_logprobs(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=model_id(client), messages=[{"role": "user", "content": PROMPT.strip()}],
                                       max_tokens=5, logprobs=True, top_logprobs=2, temperature=0)
    content = r.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content and all(t.logprob <= 0 for t in content)
    assert all(len(t.top_logprobs) >= 1 for t in content)


def test_the_server_warmed_up_before_it_was_ready(server: ServerProcess) -> None:
    log = server.log_path.read_text(errors="replace")
    assert "warm-up took" in log
    assert log.index("warm-up took") < log.index("ready: serving")


def test_errors_are_4xx_openai_style(client: openai.OpenAI, server: ServerProcess) -> None:
    with pytest.raises(openai.NotFoundError, match="no-such-model"):  # as vllm serve: an unknown model is a 404
        client.completions.create(model="no-such-model", prompt=PROMPT, max_tokens=5)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=model_id(client), prompt="x " * 400, max_tokens=5)
    r = httpx.post(f"{server.url}/v1/chat/completions", content=b"{not json",
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["message"]
    r = httpx.post(f"{server.url}/v1/completions", json={"model": model_id(client), "prompt": PROMPT, "n": "many"})
    assert r.status_code == 400 and "n" in r.json()["error"]["message"]


OP_SCHEMA = {"type": "object", "properties": {"op": {"type": "string", "enum": ["+1", "+2", "*2", "*3", "-1"]}},
             "required": ["op"], "additionalProperties": False}


def test_structured_output_follows_the_json_schema(client: openai.OpenAI) -> None:
    """vLLM's structured outputs (xgrammar): the answer is JSON that satisfies the schema, not a foresight turn."""
    import json

    import jsonschema

    r = client.chat.completions.create(
        model=model_id(client), messages=[{"role": "user", "content": PROMPT.strip()}], max_tokens=32,
        temperature=0, response_format={"type": "json_schema", "json_schema": {"name": "op", "schema": OP_SCHEMA}})
    answer = json.loads(r.choices[0].message.content or "")
    jsonschema.validate(answer, OP_SCHEMA)
    # any JSON object: the grammar holds (it opens an object), but the tiny model writes a string key that
    # never ends, so it runs to max_tokens unless it closes the object
    objects = client.chat.completions.create(
        model=model_id(client), messages=[{"role": "user", "content": PROMPT.strip()}], max_tokens=32,
        temperature=0, response_format={"type": "json_object"})
    choice = objects.choices[0]
    assert (choice.message.content or "").startswith("{")
    if choice.finish_reason == "stop":
        assert isinstance(json.loads(choice.message.content or ""), dict)
    else:
        assert choice.finish_reason == "length"


def test_a_schema_that_is_not_json_schema_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model=model_id(client), messages=[{"role": "user", "content": PROMPT.strip()}], max_tokens=8,
            response_format={"type": "json_schema", "json_schema": {"name": "bad", "schema": {"type": 5}}})
    assert err.value.body["param"] == "response_format.json_schema.schema"  # type: ignore[index]


@pytest.mark.parametrize("stream", [False, True])
def test_a_schema_xgrammar_cannot_compile_is_a_400_naming_it(server: ServerProcess, stream: bool) -> None:
    """Valid JSON Schema that the grammar backend refuses: asked of the engine before anything is sent."""
    for schema in ({"$ref": "#/$defs/nope"}, {"type": "integer", "minimum": 5, "maximum": 1}):
        r = httpx.post(f"{server.url}/v1/chat/completions", timeout=60, json={
            "messages": [{"role": "user", "content": PROMPT.strip()}], "max_tokens": 8, "stream": stream,
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == "response_format.json_schema.schema"


APPLY_TOOL = {"type": "function", "function": {
    "name": "apply", "description": "Apply one operation to x.",
    "parameters": {"type": "object", "properties": {"op": {"type": "string", "enum": ["+1", "+2", "*2", "*3", "-1"]}},
                   "required": ["op"]}}}


def test_the_reference_models_action_is_a_tool_call(client: openai.OpenAI) -> None:
    """The official client gets the turn's action as tool_calls, and its foresight beside it."""
    import json

    r = client.chat.completions.create(model=model_id(client), messages=[{"role": "user", "content": PROMPT.strip()}],
                                       tools=[APPLY_TOOL], max_tokens=120, temperature=0)  # type: ignore[list-item]
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    [call] = choice.message.tool_calls or []
    assert call.function.name == "apply" and json.loads(call.function.arguments)["op"] in ("+1", "+2", "*2", "*3", "-1")
    foresight = (choice.model_extra or {})["foresight"]
    assert foresight["rollout"] and 0 <= foresight["confidence"] <= 1

    stream = client.chat.completions.create(
        model=model_id(client), messages=[{"role": "user", "content": PROMPT.strip()}], tools=[APPLY_TOOL],  # type: ignore[list-item]
        max_tokens=120, temperature=0, stream=True, stream_options={"include_usage": True})
    name, args, finish, usage = "", "", None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            for d in c.delta.tool_calls or []:
                name += d.function.name or "" if d.function else ""
                args += d.function.arguments or "" if d.function else ""
            finish = c.finish_reason or finish
    assert (name, json.loads(args), finish) == ("apply", json.loads(call.function.arguments), "tool_calls")
    assert usage is not None and usage.completion_tokens > 0
