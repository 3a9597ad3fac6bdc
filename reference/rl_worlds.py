"""What FC-RL needs of a world: training states, a state's prompt, and a turn's plan carried out.

A turn's *plan* is what its foresight commits to — NumberReach: the operations its rollout writes; search: the
query it searches (until the passage comes back or the searches run out), then the answer its imagined chain
ends in. Carried out in the world with its own randomness (stalls, retrieval misses), the plan succeeds or not:
the outcome an app would report, and FC-RL's only reward. Exact chances are never read here. Pure Python.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from planner.format import Turn


@dataclass(frozen=True)
class RLWorld:
    name: str
    visited: Callable[[random.Random], Iterator[Any]]  # training-side states, met by a mix of policies
    prompt: Callable[[Any], str]  # the observation a state is (the user's message)
    carry_out: Callable[[Any, Turn, random.Random], tuple[bool, bool]]  # (a usable plan, it succeeded)
    max_tokens: int = 128  # a turn's budget: SmolLM2 writes a NumberReach turn in 71-105 tokens


def _numberreach() -> RLWorld:
    from reference import data
    from reference import numberreach as env
    from reference.evaluate import plan_of

    def carry_out(state: env.State, turn: Turn, rng: random.Random) -> tuple[bool, bool]:
        ops = plan_of(turn)
        usable = bool(ops) and turn.is_valid
        return usable, usable and env.simulate_plan(state, ops, rng)

    return RLWorld("numberreach", lambda rng: data.visited_states(rng, heldout=False), data.prompt_for, carry_out)


def _search() -> RLWorld:
    from reference.search import data
    from reference.search import env as search_env
    from reference.search.evaluate import plan_of

    world = search_env.World()

    def carry_out(state: search_env.State, turn: Turn, rng: random.Random) -> tuple[bool, bool]:
        plan = plan_of(turn)
        if plan is None or not turn.is_valid:
            return False, False
        return True, search_plan_succeeds(world, state, plan, rng)

    # a search turn imagines its chain and the search's four results: ~125 SmolLM2 tokens
    return RLWorld("search", lambda rng: search_env.visited_states(world, rng, heldout=False), data.prompt_for,
                   carry_out, max_tokens=192)


def search_plan_succeeds(world: Any, state: Any, plan: tuple[str | None, str], rng: random.Random) -> bool:
    """``plan`` = (query or None, answer): search ``query`` until the last fact's passage comes back or the
    searches run out, then answer — whether that episode succeeds."""
    from reference.search.env import Action

    query, answer = plan
    while query is not None and state.steps > 0 and not world.supported(state):
        state, _ = world.step(state, Action("search", query), rng)
    if world.done(state):  # out of searches without the passage
        return False
    state, _ = world.step(state, Action("answer", answer), rng)
    return bool(world.success(state))


def rl_world(name: str) -> RLWorld:
    if name == "numberreach":
        return _numberreach()
    if name == "search":
        return _search()
    raise ValueError(f"FC-RL knows no world {name!r}; known: numberreach, search")
