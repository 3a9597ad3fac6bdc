"""The reference model's Markov, tool-aware chat template: whatever way an app sends an observation — a chat
turn, a tool round trip, a plan — the model sees the prompt it was trained on, token for token."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.openai import ChatMessage
from reference import data
from reference import numberreach as env
from reference.tokenizer import CHAT_TEMPLATE

APPLY = {"type": "function", "function": {"name": "apply", "parameters": {
    "type": "object", "properties": {"op": {"type": "string"}}, "required": ["op"]}}}
CALL = {"id": "call_1", "type": "function", "function": {"name": "apply", "arguments": '{"op": "*2"}'}}
STATE = env.State(6, 40, 5)
OBS = f"x={STATE.x} target={STATE.t} steps={STATE.n}"


@pytest.fixture(scope="module")
def tokenizer(reference_model: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(reference_model))


def render(tokenizer, messages: list[dict], tools: list[dict] | None = None) -> list[int]:  # type: ignore[no-untyped-def]
    dicts = [ChatMessage.model_validate(m).as_template_dict() for m in messages]
    text = tokenizer.apply_chat_template(dicts, tokenize=False, add_generation_prompt=True, tools=tools)
    return list(tokenizer.encode(text, add_special_tokens=False))


def test_the_shipped_template_is_the_one_training_writes(reference_model: Path) -> None:
    assert (reference_model / "chat_template.jinja").read_text() == CHAT_TEMPLATE


def test_chat_turn_tool_round_trip_and_plan_see_the_trained_prompt(tokenizer) -> None:  # type: ignore[no-untyped-def]
    trained = list(tokenizer.encode(data.prompt_for(STATE)))  # <s><information>…</information>\n, as in training
    chat_turn = render(tokenizer, [{"role": "system", "content": "You play NumberReach."},
                                   {"role": "user", "content": OBS}], tools=[APPLY])
    round_trip = render(tokenizer, [
        {"role": "system", "content": "You play NumberReach."},
        {"role": "user", "content": "x=3 target=40 steps=6"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": OBS},
    ], tools=[APPLY])
    plan = render(tokenizer, [{"role": "user", "content": data.prompt_for(STATE)}])  # already wrapped
    parts = render(tokenizer, [{"role": "user", "content": [{"type": "text", "text": "x=6 target=40 "},
                                                            {"type": "text", "text": "steps=5"}]}])
    assert chat_turn == round_trip == plan == parts == trained


def test_the_prompt_stays_short_however_long_the_history(tokenizer) -> None:  # type: ignore[no-untyped-def]
    history: list[dict] = [{"role": "user", "content": "x=1 target=40 steps=9"}]
    for i in range(8):
        history += [{"role": "assistant", "content": None, "tool_calls": [{**CALL, "id": f"call_{i}"}]},
                    {"role": "tool", "tool_call_id": f"call_{i}", "content": f"x={i + 2} target=40 steps={8 - i}"}]
    ids = render(tokenizer, history, tools=[APPLY] * 3)
    assert ids == list(tokenizer.encode(data.prompt_for(env.State(9, 40, 1))))
    assert len(ids) < 16
