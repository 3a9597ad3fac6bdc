"""One ledger per request: the ``usage`` a response reports is the count that was charged — to the usage
ledger (``foresight_key_tokens``), the token metrics and the access record — for chat, completions, responses,
plans and streams alike."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.base import GenerationRequest
from engine.scripted import ScriptedEngine
from tests.unit.server.conftest import running_app


def script(prompt: str, index: int, request: GenerationRequest) -> str:
    if prompt.endswith("</confidence>"):
        return "\n<think>t</think>\n<answer>go</answer>"
    return f"<imaginary>x{index}</imaginary>\n<confidence>{60 + 10 * index}%</confidence>\n<answer>a{index}</answer>"


def charged(metrics: str) -> tuple[float, float]:
    """(prompt, completion) tokens the ledger holds for calls made without a key."""
    got = {"prompt": 0.0, "completion": 0.0}
    for line in metrics.splitlines():
        if line.startswith('foresight_key_tokens_total{key="anonymous"'):
            kind = line.split('kind="')[1].split('"')[0]
            got[kind] = float(line.rsplit(" ", 1)[1])
    return got["prompt"], got["completion"]


def streamed_usage(text: str) -> dict[str, Any]:
    chunks = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
    [usage] = [c["usage"] for c in chunks if c.get("usage")]
    return usage


def responses_usage(body: dict[str, Any]) -> dict[str, int]:
    u = body["usage"]
    return {"prompt_tokens": u["input_tokens"], "completion_tokens": u["output_tokens"]}


CALLS = {
    "chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 20, "n": 2}),
    "completions": ("/v1/completions", {"prompt": ["one", "two words"], "max_tokens": 12}),
    "responses": ("/v1/responses", {"input": "hello there", "max_output_tokens": 16}),
    "plan": ("/v1/plan", {"prompt": "obs", "algorithm": "branch_commit", "width": 3, "commit_threshold": 0.75}),
    "streamed chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 20,
                                               "stream": True, "stream_options": {"include_usage": True}}),
    "streamed completions": ("/v1/completions", {"prompt": "a b", "max_tokens": 9, "stream": True,
                                                 "stream_options": {"include_usage": True}}),
}


@pytest.mark.parametrize("name", list(CALLS))
async def test_the_response_usage_is_what_was_charged(name: str) -> None:
    path, body = CALLS[name]
    async with running_app(ScriptedEngine(script, max_model_len=2048)) as client:
        before = charged((await client.get("/metrics")).text)
        r = await client.post(path, json=body)
        assert r.status_code == 200, r.text
        if body.get("stream"):
            usage = streamed_usage(r.text)
        elif path == "/v1/responses":
            usage = responses_usage(r.json())
        else:
            usage = r.json()["usage"]
        after = charged((await client.get("/metrics")).text)
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert (after[0] - before[0], after[1] - before[1]) == (usage["prompt_tokens"], usage["completion_tokens"])


async def test_a_request_that_fails_midway_is_charged_what_it_spent() -> None:
    engine = ScriptedEngine(lambda p, i, r: "y" * 200, delay_s=0.01)  # ~2 s; the deadline cuts it at 0.3 s
    async with running_app(engine, request_timeout_s=0.3) as client:
        r = await client.post("/v1/completions", json={"prompt": "x", "max_tokens": 200})
        assert r.status_code == 504, r.text
        prompt, completion = charged((await client.get("/metrics")).text)
    assert prompt == 1 and 0 < completion < 200
