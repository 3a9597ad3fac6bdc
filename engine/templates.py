"""Chat templates: the documented default for models whose tokenizer has none, and the documented tools
block for templates that ignore ``tools``.

The default writes each message as ``<|role|>\\ncontent\\n``; the generation prompt is ``<|assistant|>\\n``.
Content given as a list of parts keeps its text parts.

A template that never reads the ``tools`` variable would drop the request's tools silently. Such a
checkpoint gets them in a system block instead (:func:`with_tools_block`): the block below is added to the
first system message, or is one if there is none. A template that reads ``tools`` — Qwen's, Hermes', ours —
renders them itself (the reference model's reads it and renders nothing: its one tool is built in).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

import jinja2
from jinja2 import meta

DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)

TOOLS_BLOCK_HEAD = (
    "# Tools\n\nYou may call one of these functions. Each is given as JSON within <tools></tools>:\n<tools>\n"
)
TOOLS_BLOCK_TAIL = (
    "\n</tools>\n\nTo call one, write its name and arguments as a JSON object within <tool_call></tool_call>:\n"
    '<tool_call>{"name": <function-name>, "arguments": <args-json-object>}</tool_call>'
)


@functools.lru_cache(maxsize=16)
def uses_tools(template: str) -> bool:
    """Whether the template reads the ``tools`` variable (so it renders the tools itself). Cached: parsing
    a template takes milliseconds, and a server has one template."""
    env = jinja2.Environment(extensions=["jinja2.ext.loopcontrols"])  # as Hugging Face renders templates
    try:
        return "tools" in meta.find_undeclared_variables(env.parse(template))
    except jinja2.TemplateSyntaxError:  # a tag of Hugging Face's own ({% generation %}): read the text
        return "tools" in template


def tools_block(tools: Sequence[dict[str, Any]]) -> str:
    """The documented system block listing ``tools`` (OpenAI function definitions), one JSON line each."""
    return TOOLS_BLOCK_HEAD + "\n".join(json.dumps(t, ensure_ascii=False) for t in tools) + TOOLS_BLOCK_TAIL


def with_tools_block(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` with the tools block in the first system message (added before it), or in a new one."""
    out = [dict(m) for m in messages]
    block = tools_block(tools)
    if out and out[0].get("role") == "system" and isinstance(out[0].get("content"), str):
        out[0]["content"] = f"{block}\n\n{out[0]['content']}"
        return out
    return [{"role": "system", "content": block}, *out]
