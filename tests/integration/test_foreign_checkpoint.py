"""A real pretrained LLM through the server, unchanged: SmolLM2-135M-Instruct (``foresight models add
smollm2-135m-instruct``; scripts/test.sh adds it) — a byte-level BPE of 49,152 tokens, a ChatML template
written by someone else that does not render tools, real weights, a context of 8,192.

The session's server on it (``smol``, tests/integration/conftest.py) runs in float32."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.integration.server_process import ServerProcess

pytestmark = pytest.mark.integration
NAME = "smollm2-135m-instruct"
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
HERMES = [  # a few-shot Hermes-style call: the model copies the format
    {"role": "system", "content": 'Call tools by writing <tool_call>{"name": NAME, "arguments": {...}}</tool_call>.'},
    {"role": "user", "content": "Weather in Rome?"},
    {"role": "assistant", "content": '<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>'},
    {"role": "user", "content": "Weather in Paris?"},
]
FORESIGHT = [  # a few-shot foresight prompt: the format is there for the model to follow
    {"role": "system", "content": "You are an agent. Before each action, imagine what will happen in "
                                  "<imaginary>...</imaginary>, then state how likely your plan succeeds in "
                                  "<confidence>NN%</confidence>, then give one action in <answer>...</answer>."},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "<imaginary>I answer 4 and the user confirms it is right.</imaginary>"
                                     "<confidence>95%</confidence><answer>4</answer>"},
    {"role": "user", "content": "What is the capital of Italy?"},
    {"role": "assistant", "content": "<imaginary>I answer Rome and it is correct.</imaginary>"
                                     "<confidence>90%</confidence><answer>Rome</answer>"},
    {"role": "user", "content": "What is the capital of France?"},
]
PARIS = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@pytest.fixture(scope="module")
def client(smol: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{smol.url}/v1", api_key="unused", max_retries=0)


def post(srv: ServerProcess, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{srv.url}/v1/{path}", json=body, timeout=120)
    assert r.status_code == 200, r.text
    return dict(r.json())


def stream_text(srv: ServerProcess, path: str, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    chunks = []
    with httpx.stream("POST", f"{srv.url}/v1/{path}", json={**body, "stream": True}, timeout=120) as r:
        assert r.status_code == 200
        chunks = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    text = "".join((c["choices"][0].get("delta", {}).get("content") or c["choices"][0].get("text") or "")
                   for c in chunks if c.get("choices"))
    return text, chunks


def test_it_is_listed_under_its_name_with_its_real_context(client: openai.OpenAI) -> None:
    [m] = client.models.list().data
    assert m.id == NAME and (m.model_extra or {})["max_model_len"] == 8192


def test_chat_streamed_or_not_gives_its_greedy_answer(smol: ServerProcess, client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=NAME, messages=PARIS, max_tokens=24, temperature=0)  # type: ignore[arg-type]
    assert r.choices[0].message.content == "The capital of France is Paris." and r.choices[0].finish_reason == "stop"
    text, _ = stream_text(smol, "chat/completions", {"messages": PARIS, "max_tokens": 24, "temperature": 0})
    assert text == r.choices[0].message.content


def test_completions_with_logprobs_and_the_responses_api(client: openai.OpenAI) -> None:
    r = client.completions.create(model=NAME, prompt="The capital of France is", max_tokens=8, temperature=0,
                                  logprobs=3)
    lp = r.choices[0].logprobs
    assert r.usage is not None and lp is not None and lp.tokens is not None and lp.top_logprobs is not None
    assert len(lp.tokens) == r.usage.completion_tokens == len(lp.top_logprobs)
    assert "".join(lp.tokens) == r.choices[0].text
    assert all(len(top) == 3 for top in lp.top_logprobs)
    resp = client.responses.create(model=NAME, input=PARIS[0]["content"], max_output_tokens=24, temperature=0)
    assert resp.output_text == "The capital of France is Paris."


def test_its_template_ignores_tools_so_the_servers_tools_block_applies(smol: ServerProcess) -> None:
    bare = post(smol, "chat/completions", {"messages": PARIS, "max_tokens": 1})["usage"]["prompt_tokens"]
    tools = post(smol, "chat/completions", {"messages": PARIS, "max_tokens": 1, "tools": [WEATHER]})
    assert tools["usage"]["prompt_tokens"] > bare + 30  # the tools block, with the schema, in the system turn


def test_a_hermes_call_it_writes_comes_back_as_tool_calls_streamed_or_not(smol: ServerProcess) -> None:
    body = {"messages": HERMES, "tools": [WEATHER], "temperature": 0, "max_tokens": 60}
    choice = post(smol, "chat/completions", body)["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and not choice["message"]["content"]
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    _, chunks = stream_text(smol, "chat/completions", body)
    deltas = [d for c in chunks if c.get("choices") for d in c["choices"][0]["delta"].get("tool_calls") or []]
    name = "".join(d["function"].get("name") or "" for d in deltas)
    args = "".join(d["function"].get("arguments") or "" for d in deltas)
    assert (name, json.loads(args)) == ("get_weather", {"city": "Paris"})
    assert not any("<tool_call>" in (c["choices"][0]["delta"].get("content") or "") for c in chunks if c.get("choices"))


def test_a_required_call_and_a_json_schema_on_a_49k_vocabulary(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": "Weather in Paris?"}],  # type: ignore[call-overload]
                                       tools=[WEATHER], tool_choice="required", max_tokens=96, temperature=0)
    [call] = r.choices[0].message.tool_calls or []
    assert r.choices[0].finish_reason == "tool_calls" and isinstance(json.loads(call.function.arguments)["city"], str)
    schema = {"type": "object", "properties": {"capital": {"type": "string", "maxLength": 20},
                                               "population_millions": {"type": "integer"}},
              "required": ["capital", "population_millions"], "additionalProperties": False}
    out = client.chat.completions.create(model=NAME, messages=PARIS, max_tokens=60, temperature=0,  # type: ignore[arg-type]
                                         response_format={"type": "json_schema",
                                                          "json_schema": {"name": "city", "schema": schema}})
    value = json.loads(out.choices[0].message.content or "")
    assert set(value) == {"capital", "population_millions"} and isinstance(value["population_millions"], int)


@pytest.mark.parametrize(("stop", "ends_inside_a_token"), [("</confidence>", True), ("</tool_call>", False)])
def test_a_stop_string_that_straddles_bpe_tokens_is_cut_where_the_text_says(
        smol: ServerProcess, smollm2: Path, stop: str, ends_inside_a_token: bool) -> None:
    """Both tags are several tokens; the model writes ``</confidence>`` ending inside a ``><`` token."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2)
    messages = FORESIGHT if stop == "</confidence>" else HERMES
    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    free = post(smol, "completions", {"prompt": prompt, "max_tokens": 60, "temperature": 0})["choices"][0]["text"]
    assert stop in free, free
    ids = tok(free).input_ids
    assert len(tok(stop, add_special_tokens=False).input_ids) > 1
    assert (not any(tok.decode(ids[:k]).endswith(stop) for k in range(len(ids) + 1))) == ends_inside_a_token
    want = free[: free.index(stop)]
    cut = post(smol, "completions", {"prompt": prompt, "max_tokens": 60, "temperature": 0, "stop": [stop]})
    assert cut["choices"][0]["text"] == want and cut["choices"][0]["finish_reason"] == "stop"
    streamed, _ = stream_text(smol, "completions", {"prompt": prompt, "max_tokens": 60, "temperature": 0,
                                                    "stop": [stop]})
    assert streamed == want


def test_a_plan_on_a_model_that_writes_no_foresight_ends_after_one_round(smol: ServerProcess) -> None:
    essay = [{"role": "user", "content": "Write a long essay on the history of France."}]
    body = post(smol, "plan", {"messages": essay, "algorithm": "branch_commit", "width": 4, "seed": 1,
                               "budget": {"max_tokens": 4096, "deadline_s": 120}})
    assert body["decision"] == "no_confidence" and body["usage"]["engine_calls"] == 1
    assert body["usage"]["candidates"] == 4 and body["text"]
    kinds = {p["kind"]: p["candidates"] for p in body["problems"]}
    assert kinds["missing_confidence"] == 4


def test_a_plan_works_where_a_few_shot_prompt_gives_the_format(smol: ServerProcess) -> None:
    body = post(smol, "plan", {"messages": FORESIGHT, "algorithm": "branch_commit", "width": 4, "seed": 1,
                               "temperature": 0.7, "budget": {"max_tokens": 1024}})
    assert body["decision"] in ("commit", "budget_exhausted")
    assert all(c["raw_confidence"] is not None for c in body["candidates"])
    assert body["action"] is not None and body["action"]["kind"] == "answer"  # continued from the span's tokens
    assert body["text"].count("</confidence><answer>") == 1 and body["problems"] == []


def test_a_prefilled_assistant_message_is_continued_as_vllm_serves_it(smol: ServerProcess, smollm2: Path) -> None:
    """its_hub continues an assistant-final conversation with ``add_generation_prompt: false`` and
    ``continue_final_message: true`` (vLLM's chat extensions): the prompt is the template's, left open."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2)
    messages = [*PARIS, {"role": "assistant", "content": "The capital of France is"}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False, continue_final_message=True)
    assert text.endswith("The capital of France is")
    want_ids = tok(text, add_special_tokens=False)["input_ids"]
    body = {"messages": messages, "max_tokens": 4, "temperature": 0, "add_generation_prompt": False,
            "continue_final_message": True, "extra_body": {}}
    out = post(smol, "chat/completions", body)
    assert out["usage"]["prompt_tokens"] == len(want_ids)
    assert "Paris" in (out["choices"][0]["message"]["content"] or "")
    fresh = post(smol, "chat/completions", {"messages": messages, "max_tokens": 4, "temperature": 0})
    assert fresh["usage"]["prompt_tokens"] > len(want_ids)  # closed, and a new assistant turn begun
