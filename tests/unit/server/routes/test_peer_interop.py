"""What the peers (its_hub 1.2.0's gateway, optillm 0.4.0's proxy) send our chat endpoint, answered as vLLM's
own server answers it (scripted engine; bench/peers.py runs the real peers)."""

from __future__ import annotations

import httpx
import pytest

from engine.base import GenerationRequest
from engine.scripted import ScriptedEngine
from tests.unit.server.conftest import running_app


def echo_prompt(prompt: str, index: int, request: GenerationRequest) -> str:
    return f"[{index}] after: {prompt[-24:]!r}"


@pytest.fixture
async def client() -> httpx.AsyncClient:
    async with running_app(ScriptedEngine(echo_prompt, max_model_len=2048), warmup=False) as c:
        yield c


async def test_its_hubs_literal_extra_body_and_continuation_flags_are_honoured(client: httpx.AsyncClient) -> None:
    """its_hub posts raw JSON: a literal ``extra_body`` object, and for a conversation that ends with the
    assistant, ``add_generation_prompt: false`` and ``continue_final_message: true`` at the top level."""
    plain = await client.post("/v1/chat/completions", json={
        "model": "scripted", "messages": [{"role": "user", "content": "hi"}], "extra_body": {}})
    assert plain.status_code == 200, plain.text
    assert plain.json()["choices"][0]["message"]["content"].endswith("'user: hi\\nassistant: '")
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "The answer is"}]
    flags = {"add_generation_prompt": False, "continue_final_message": True}
    cont = await client.post("/v1/chat/completions", json={
        "model": "scripted", "messages": messages, **flags, "extra_body": flags})
    assert cont.status_code == 200, cont.text
    # the model continues the assistant's own message: the prompt ends inside it, no new turn begun
    assert cont.json()["choices"][0]["message"]["content"].endswith("'assistant: The answer is'")
    fresh = await client.post("/v1/chat/completions", json={"model": "scripted", "messages": messages})
    assert fresh.json()["choices"][0]["message"]["content"].endswith("answer is\\nassistant: '")
    assert cont.json()["usage"]["prompt_tokens"] < fresh.json()["usage"]["prompt_tokens"]


@pytest.mark.parametrize(("body", "says"), [
    ({"continue_final_message": True}, "add_generation_prompt: false"),
    ({"continue_final_message": True, "add_generation_prompt": False}, "must be the assistant's"),
])
async def test_a_continuation_that_cannot_be_is_a_400_naming_it(client: httpx.AsyncClient, body: dict,
                                                                says: str) -> None:
    r = await client.post("/v1/chat/completions", json={
        "model": "scripted", "messages": [{"role": "user", "content": "hi"}], **body})
    assert r.status_code == 400 and says in r.json()["error"]["message"]


async def test_optillms_n_k_call_with_the_openai_sdks_headers(client: httpx.AsyncClient) -> None:
    """optillm's plugins call the backend through the openai SDK: one call with n = k, its x-stainless headers."""
    headers = {"user-agent": "OpenAI/Python 3.63.0", "x-stainless-lang": "python", "x-stainless-retry-count": "0"}
    r = await client.post("/v1/chat/completions", headers=headers, json={
        "model": "scripted", "messages": [{"role": "user", "content": "hi"}], "n": 8, "temperature": 1.0})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [c["index"] for c in body["choices"]] == list(range(8))
    assert body["usage"]["completion_tokens"] == sum(len(c["message"]["content"]) for c in body["choices"])
