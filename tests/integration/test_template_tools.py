"""What a pretrained model's own template cannot show (SmolLM2's ChatML does not render tools:
test_foreign_checkpoint.py): a template that renders the tools block and the tool round trip — a random-weight
Qwen2 model with a locally trained tokenizer and the Qwen2.5-style tool template (reference/random_checkpoint.py),
served by ``foresight serve --model DIR``. Random weights: the assertions are on protocol and parsing; a required
tool call is made well-formed by constrained decoding."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from reference.random_checkpoint import build
from tests.integration.server_process import ServerProcess, start_server

pytestmark = pytest.mark.integration
OPS = ["+1", "*2"]
APPLY = {"type": "function", "function": {"name": "apply", "description": "Apply one operation.", "parameters": {
    "type": "object", "properties": {"op": {"type": "string", "enum": OPS}}, "required": ["op"]}}}
USER = [{"role": "user", "content": "x=3 target=12 steps=4"}]


@pytest.fixture(scope="module")
def qwen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    model = build(tmp_path_factory.mktemp("ckpt") / "qwen-tiny")
    srv = start_server(model, tmp_path_factory.mktemp("qwen-server"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(qwen: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{qwen.url}/v1", api_key="unused", max_retries=0)


def test_its_template_renders_the_tools_and_the_tool_response(qwen: ServerProcess) -> None:
    def prompt_tokens(body: dict) -> int:  # type: ignore[type-arg]
        r = httpx.post(f"{qwen.url}/v1/chat/completions", json={"max_tokens": 1, **body}, timeout=60)
        assert r.status_code == 200, r.text
        return int(r.json()["usage"]["prompt_tokens"])

    bare, with_tools = prompt_tokens({"messages": USER}), prompt_tokens({"messages": USER, "tools": [APPLY]})
    call = {"id": "call_1", "type": "function", "function": {"name": "apply", "arguments": '{"op": "*2"}'}}
    trip = [*USER, {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "x=6 target=12 steps=3"}]
    assert with_tools > bare + 20  # Qwen's template writes a tools block (ours does not)
    assert prompt_tokens({"messages": trip, "tools": [APPLY]}) > with_tools + 10  # the call and <tool_response>


def test_a_required_call_is_well_formed_streamed_or_not(client: openai.OpenAI) -> None:
    kw = {"model": "qwen-tiny", "messages": USER, "tools": [APPLY], "tool_choice": "required", "max_tokens": 128,
          "temperature": 0}
    r = client.chat.completions.create(**kw)  # type: ignore[call-overload]
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    [call] = choice.message.tool_calls or []
    assert call.function.name == "apply" and json.loads(call.function.arguments)["op"] in OPS
    assert "foresight" in (choice.model_extra or {})  # random weights write no foresight: reported as problems
    name, args = "", ""
    for chunk in client.chat.completions.create(**kw, stream=True):  # type: ignore[call-overload]
        for d in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            name += (d.function.name or "") if d.function else ""
            args += (d.function.arguments or "") if d.function else ""
    assert (name, json.loads(args)) == ("apply", json.loads(call.function.arguments))


def test_plan(qwen: ServerProcess) -> None:
    r = httpx.post(f"{qwen.url}/v1/plan", timeout=120, json={
        "messages": USER, "tools": [APPLY], "algorithm": "best_of_n", "width": 2, "temperature": 1.0, "seed": 1,
        "budget": {"max_tokens": 256}})
    assert r.status_code == 200, r.text
    body = r.json()
    unconfident = all(c["raw_confidence"] is None for c in body["candidates"])
    assert body["decision"] == ("no_confidence" if unconfident else "commit") and body["usage"]["candidates"] >= 1
    assert body["message"]["role"] == "assistant" and body["foresight"] is not None  # parsed, whatever it wrote


def test_served_by_the_same_command_a_user_runs(tmp_path: Path) -> None:
    """``build`` is what a user's checkpoint looks like on disk: config, weights, tokenizer, template."""
    out = build(tmp_path / "again")
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= {
        p.name for p in out.iterdir()}
    assert json.loads((out / "config.json").read_text())["architectures"] == ["Qwen2ForCausalLM"]
