"""A template that never reads ``tools`` gets them in the documented system block; one that reads them (the
reference model's, Qwen's) renders them itself."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2

from engine.templates import DEFAULT_CHAT_TEMPLATE, TOOLS_BLOCK_HEAD, tools_block, uses_tools, with_tools_block

REPO = Path(__file__).resolve().parents[3]
APPLY = {"type": "function", "function": {"name": "apply", "parameters": {"type": "object"}}}


def test_which_templates_read_tools() -> None:
    assert not uses_tools(DEFAULT_CHAT_TEMPLATE)
    assert uses_tools((REPO / "models" / "foresight-numberreach" / "chat_template.jinja").read_text())
    assert uses_tools((REPO / "docs" / "templates" / "qwen2.5-foresight.jinja").read_text())
    assert not uses_tools("{% if broken")  # a template that does not parse renders nothing of tools either
    # Hugging Face's own tags and loop controls still count as reading tools
    assert uses_tools("{% for t in tools %}{% break %}{% endfor %}")
    assert uses_tools("{% generation %}{{ tools }}{% endgeneration %}")


def test_the_block_joins_the_first_system_message_or_is_one() -> None:
    block = tools_block([APPLY])
    assert block.startswith(TOOLS_BLOCK_HEAD) and json.dumps(APPLY) in block and "<tool_call>" in block
    with_system = with_tools_block([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
                                   [APPLY])
    assert with_system[0]["content"] == f"{block}\n\nBe brief." and len(with_system) == 2
    without = with_tools_block([{"role": "user", "content": "hi"}], [APPLY])
    assert without[0] == {"role": "system", "content": block} and without[1] == {"role": "user", "content": "hi"}


def test_the_default_template_then_shows_the_tools() -> None:
    messages = with_tools_block([{"role": "user", "content": "hi"}], [APPLY])
    text = jinja2.Template(DEFAULT_CHAT_TEMPLATE).render(messages=messages, add_generation_prompt=True)
    assert text.startswith("<|system|>\n# Tools") and '"name": "apply"' in text and text.endswith("<|assistant|>\n")
