"""Which actions are the same vote, and a tally weighted by calibrated confidence. Pure Python.

Two actions are one vote when they are the same action:

- tool calls by name and canonical JSON arguments (keys sorted, no spaces: ``{"b": 1, "a": 2}`` and
  ``{"a":2,"b":1}`` agree);
- searches by the search world's own query normalisation — lower case, full stops as spaces, words
  split on white space (``reference.search.retrieval``'s BM25 words, in order);
- answers by normalised text: Unicode NFKC, case folded, white space collapsed, punctuation at either end
  dropped (``"Paris."`` and ``" paris"`` agree).

A tally weighs each turn's vote by its calibrated confidence (none stated: 0). Where every voting turn
weighs 0 — a model that claims nothing, or says 0% everywhere — each counts 1: plain self-consistency.
"""

from __future__ import annotations

import json
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from planner.format import Action

_EDGE_PUNCTUATION = string.punctuation + "“”‘’«»。、，！？"


def _words(text: str) -> str:
    return " ".join(text.lower().replace(".", " ").split())


def _answer(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split()).strip(_EDGE_PUNCTUATION + " ")


def vote_key(action: Action | None) -> str | None:
    """The normalised form of an action (``kind:…``); None for no action."""
    if action is None:
        return None
    if action.kind == "tool_call":
        if action.name is None:  # not a valid call: only the very same text agrees with it
            return "tool_call:" + " ".join(action.content.split())
        args = json.dumps(action.arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return f"tool_call:{action.name}:{args}"
    if action.kind == "search":
        return "search:" + _words(action.content)
    return "answer:" + _answer(action.content)


class Voter(Protocol):
    """What a tally needs of a turn (a planner candidate)."""

    @property
    def id(self) -> int: ...

    @property
    def calibrated_confidence(self) -> float | None: ...


@dataclass
class Vote:
    """One action and the turns that chose it."""

    key: str
    turns: list[int] = field(default_factory=list)  # candidate ids
    weight: float = 0.0  # their calibrated confidences, summed (or their count: see the module's doc)
    share: float = 0.0  # of all votes' weight


def tally(voters: Sequence[tuple[Voter, str | None]]) -> list[Vote]:
    """The votes of ``(turn, its vote key)`` pairs (a turn without an action does not vote), leading first:
    by weight, then by turns, then by the first turn drawn."""
    voting = [(v, key) for v, key in voters if key is not None]
    weighted = any((v.calibrated_confidence or 0.0) > 0 for v, _ in voting)
    votes: dict[str, Vote] = {}
    for v, key in voting:
        assert key is not None
        vote = votes.setdefault(key, Vote(key))
        vote.turns.append(v.id)
        vote.weight += (v.calibrated_confidence or 0.0) if weighted else 1.0
    total = sum(v.weight for v in votes.values())
    for vote in votes.values():
        vote.share = vote.weight / total if total > 0 else 0.0
    return sorted(votes.values(), key=lambda v: (-v.weight, -len(v.turns), v.turns[0]))
