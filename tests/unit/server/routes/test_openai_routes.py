"""OpenAI-compatible routes against a scripted engine: shapes, validation, every error path."""

from __future__ import annotations

import json

import httpx
import pytest

from engine.scripted import ScriptedEngine
from tests.unit.server.conftest import running_app

CHAT = {"model": "scripted", "messages": [{"role": "user", "content": "hello"}]}


async def test_chat_completion_shape_and_usage(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
    r = await client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 50})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    text = body["choices"][0]["message"]["content"]
    assert text.startswith("echo 0:")
    assert body["usage"]["completion_tokens"] == len(text)
    assert body["usage"]["prompt_tokens"] == len(engine.requests[-1].prompt_token_ids)
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + len(text)


async def test_sampling_parameters_reach_the_engine(client: httpx.AsyncClient, engine: ScriptedEngine) -> None:
    r = await client.post("/v1/chat/completions", json={**CHAT, "n": 3, "temperature": 0.3, "top_p": 0.5,
                                                        "seed": 7, "stop": ["X"], "max_tokens": 12})
    assert r.status_code == 200
    req = engine.requests[-1]
    assert (req.n, req.temperature, req.top_p, req.seed, req.stop, req.max_tokens) == (3, 0.3, 0.5, 7, ("X",), 12)
    assert [c["index"] for c in r.json()["choices"]] == [0, 1, 2]


async def test_stop_string_and_length_finish_reasons(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/completions", json={"model": "scripted", "prompt": "abc", "stop": ":"})
    assert r.json()["choices"][0] == {"index": 0, "text": "echo 0", "finish_reason": "stop", "logprobs": None}
    r = await client.post("/v1/completions", json={"model": "scripted", "prompt": "abc", "max_tokens": 3})
    assert r.json()["choices"][0]["text"] == "ech"
    assert r.json()["choices"][0]["finish_reason"] == "length"


async def test_completion_batch_prompts_index_choices(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/completions", json={"model": "scripted", "prompt": ["a", "b"], "n": 2})
    assert [c["index"] for c in r.json()["choices"]] == [0, 1, 2, 3]


async def test_logprobs_in_both_apis(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json={**CHAT, "logprobs": True, "top_logprobs": 2, "max_tokens": 4})
    content = r.json()["choices"][0]["logprobs"]["content"]
    assert len(content) == 4 and content[0]["logprob"] == -0.5
    r = await client.post("/v1/completions", json={"model": "scripted", "prompt": "p", "logprobs": 1, "max_tokens": 3})
    assert r.json()["choices"][0]["logprobs"]["tokens"] == ["e", "c", "h"]


async def test_streaming_chat_is_sse_ending_in_done(client: httpx.AsyncClient) -> None:
    payload = {**CHAT, "stream": True, "max_tokens": 10, "stream_options": {"include_usage": True}}
    async with client.stream("POST", "/v1/chat/completions", json=payload) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line async for line in r.aiter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert len(text) == 10 and text.startswith("echo 0: ")
    assert chunks[-1]["usage"]["completion_tokens"] == 10


async def test_streaming_completion(client: httpx.AsyncClient) -> None:
    async with client.stream("POST", "/v1/completions",
                             json={"model": "scripted", "prompt": "xy", "stream": True, "n": 2}) as r:
        lines = [line async for line in r.aiter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    idx = {json.loads(line[6:])["choices"][0]["index"] for line in lines[:-1]}
    assert idx == {0, 1}


async def test_models_lists_the_served_model(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/models")
    assert r.json()["data"][0]["id"] == "scripted"
    assert r.json()["data"][0]["max_model_len"] == 512


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**CHAT, "n": 0}, "n"),
        ({**CHAT, "n": 1000}, "n"),
        ({**CHAT, "temperature": "hot"}, "temperature"),
        ({**CHAT, "temperature": 5}, "temperature"),
        ({**CHAT, "max_tokens": -1}, "max_tokens"),
        ({**CHAT, "max_tokens": 100000}, "max_tokens"),
        ({"model": "scripted", "messages": []}, "messages"),
        ({"model": "scripted", "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"model": "scripted"}, "messages"),
        ({**CHAT, "stop": [""]}, "stop"),
        ({**CHAT, "seed": 2**64}, "seed"),  # wider than the engine's generators take (was a 500)
        ({**CHAT, "messages": [{"role": "user", "content": "x" * 600}]}, "messages"),
    ],
)
async def test_bad_chat_requests_are_400_with_openai_body(client: httpx.AsyncClient, body: dict, field: str) -> None:
    r = await client.post("/v1/chat/completions", json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert err["message"]
    assert err["param"] == field or field in err["message"]


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", content=b'{"model": "scripted", "messages": [',
                          headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "JSON" in r.json()["error"]["message"]
    r = await client.post("/v1/completions", content=b"[1, 2", headers={"content-type": "application/json"})
    assert r.status_code == 400


async def test_non_object_body_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/completions", json=[1, 2, 3])
    assert r.status_code == 400


async def test_unknown_fields_are_accepted(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json={**CHAT, "frequency_penalty": 0, "tools": [],
                                                        "some_future_field": {"x": 1}})
    assert r.status_code == 200


async def test_unknown_route_is_openai_style_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/nothing")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "not_found_error"


async def test_while_loading_v1_is_503_and_ready_is_503() -> None:
    engine = ScriptedEngine(start_delay_s=5)
    async with running_app(engine, wait_ready=False) as c:
        r = await c.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 503 and r.json()["error"]["code"] == "loading"
        assert r.headers["retry-after"]
        assert (await c.get("/ready")).status_code == 503
        assert (await c.get("/health")).status_code == 200


async def test_dead_engine_makes_health_503_and_requests_fail_fast(client: httpx.AsyncClient,
                                                                   engine: ScriptedEngine) -> None:
    assert (await client.get("/health")).status_code == 200
    engine.dead = True
    assert (await client.get("/health")).status_code == 503
    r = await client.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "engine_dead"


async def test_engine_dying_mid_request_is_503_not_500() -> None:
    engine = ScriptedEngine(delay_s=0.01)
    async with running_app(engine) as c:
        import asyncio

        async def kill() -> None:
            await asyncio.sleep(0.05)
            engine.dead = True

        task = asyncio.create_task(kill())
        r = await c.post("/v1/chat/completions", json={**CHAT, "max_tokens": 200})
        await task
        assert r.status_code == 503
        assert (await c.get("/health")).status_code == 503
