"""An optillm plugin for bench/peers.py: majority voting over a foresight turn's *action*.

optillm's own majority_voting extracts answers as "answer: …" or boxed text, which a foresight turn never
writes; this votes on what the turn does instead — its last ``<tool_call>``, ``<search>`` or ``<answer>``
block, white space collapsed — and returns the first turn that chose the winning action, as optillm's
majority vote returns its winner. It runs inside optillm's own environment (.venv-peer-optillm): nothing
of ours is imported. One backend call with ``n = k`` on the original messages (not optillm's flattened
"User:/Assistant:" text), like optillm's own plugin; ``k`` (default 8) and ``temperature`` come from the
request; ``max_tokens`` only if the client sent one.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

SLUG = "action_vote"
ACTION = re.compile(r"(?s).*(<(?:tool_call|search|answer)>.*?</(?:tool_call|search|answer)>)")


def action_of(text: str) -> str | None:
    m = ACTION.search(text or "")
    return " ".join(m.group(1).split()) if m else None


def run(system_prompt: str, initial_query: str, client: Any, model: str, request_config: dict[str, Any] | None = None,
        messages: list[dict[str, Any]] | None = None) -> tuple[str, int]:
    config = request_config or {}
    k = int(config.get("k", 8))
    extra = {"max_tokens": config["max_tokens"]} if config.get("max_tokens") else {}
    chat = messages or [{"role": "user", "content": initial_query}]
    response = client.chat.completions.create(model=model, messages=chat, n=k,
                                              temperature=config.get("temperature", 1.0), **extra)
    texts = [choice.message.content or "" for choice in response.choices]
    actions = [action_of(t) for t in texts]
    counts = Counter(a for a in actions if a is not None)
    if not counts:
        return texts[0] if texts else "", response.usage.completion_tokens
    winner = counts.most_common(1)[0][0]
    return texts[actions.index(winner)], response.usage.completion_tokens
