"""The reference worlds a foresight model is trained on, as :mod:`reference.train` needs them.

``numberreach`` (the shipped default model's world) and ``search`` (a knowledge base searched with
BM25, :mod:`reference.search`). Each names how to make its training examples, its tokenizer's whole
tokens, the tokens that get fixed identity codes, its chat template, and which completion tokens
carry no policy loss. Pure Python.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WORLDS = ("numberreach", "search")
_OP_RE = re.compile(r"[+*\-]\d(?= )")  # an operation in a NumberReach rollout ("*3 27")


@dataclass(frozen=True)
class WorldSpec:
    name: str
    stage_examples: Callable[[int, int, int], list[Any]]  # (stage, count, seed) -> examples
    whole_tokens: tuple[str, ...]
    # tokens given fixed random input codes (reference.train); the tokens of one group share a code
    identity_groups: tuple[tuple[str, ...], ...]
    chat_template: str
    # completion token indexes that carry no loss when the plan's choice is not to be imitated:
    # (tokenizer, example, the completion's encoding) -> indexes
    unmasked_policy: Callable[[Any], bool]  # whether an example's plan teaches the policy
    policy_tokens: Callable[[Any, Any, Any], list[int]]
    # loss weight of the plan's choice where it teaches the policy (stages 2-3): the search model's
    # one decisive token ("found" or " search") is outweighed by the ~70 tokens around it otherwise
    policy_weight: float = 1.0
    # where the completion's judgement begins (it carries the confidence weight up to </confidence>): the
    # search model's analysis holds the checks its confidence follows from, so they weigh as much
    judgement_tag: str = "<confidence>"
    # the characters of a completion that state the plan's choice (as policy_tokens, for any tokenizer:
    # the LoRA recipe on a pretrained base masks by character offsets)
    policy_chars: Callable[[Any], list[tuple[int, int]]] = lambda _ex: []


def _numberreach() -> WorldSpec:
    from reference import data
    from reference.tokenizer import CHAT_TEMPLATE, FORMAT_TAGS, NUMBER_TOKENS, OP_TOKENS, TOOL_CALL_TOKENS

    def policy_tokens(tok: Any, ex: Any, enc: Any) -> list[int]:
        end = ex.completion.find("</imaginary>")
        ops = {tok.token_to_id(op) for op in OP_TOKENS}
        return [i for i, (s, _e) in enumerate(enc.offsets) if s < end and enc.ids[i] in ops]

    def policy_chars(ex: Any) -> list[tuple[int, int]]:
        end = ex.completion.find("</imaginary>")
        return [(m.start(), m.end()) for m in _OP_RE.finditer(ex.completion, 0, max(end, 0))]

    return WorldSpec("numberreach", data.stage_examples, (*FORMAT_TAGS, *TOOL_CALL_TOKENS, *OP_TOKENS, *NUMBER_TOKENS),
                     tuple((n,) for n in NUMBER_TOKENS), CHAT_TEMPLATE, lambda ex: bool(ex.shortest_hit), policy_tokens,
                     policy_chars=policy_chars)


def _search() -> WorldSpec:
    from reference.search import data
    from reference.search.env import World
    from reference.search.tokens import CHAT_TEMPLATE, IDENTITY_GROUPS, WHOLE_TOKENS

    world = World()

    def examples(stage: int, count: int, seed: int) -> list[Any]:
        return data.stage_examples(stage, count, seed, world=world)

    def policy_tokens(_tok: Any, ex: Any, enc: Any) -> list[int]:
        lo, hi = ex.policy_span
        return [i for i, (s, _e) in enumerate(enc.offsets) if lo <= s < hi]

    return WorldSpec("search", examples, WHOLE_TOKENS, IDENTITY_GROUPS, CHAT_TEMPLATE,
                     lambda ex: bool(ex.optimal), policy_tokens, policy_weight=4.0,
                     judgement_tag="<analysis>", policy_chars=lambda ex: [ex.policy_span])


def world_spec(name: str) -> WorldSpec:
    if name == "numberreach":
        return _numberreach()
    if name == "search":
        return _search()
    raise ValueError(f"unknown world {name!r}; known: {', '.join(WORLDS)}")
