"""The two reference worlds as ``bench/peers.py`` plays them: held-out starts, the observation an agent
sends, the world action a turn's text takes, a step, and each decision's exact advantage (the paired
estimate: a policy's success as the optimum's exact value from the same starts plus the mean of its
episodes' exact advantages — unbiased, and far less noisy than a success rate)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Protocol

from planner.format import parse_turn
from reference import data
from reference import numberreach as env
from reference.planning import mean_se


class World(Protocol):
    name: str
    model_dir: str  # under models/

    def starts(self, count: int, rng: random.Random) -> list[Any]: ...
    def observation(self, state: Any) -> str: ...
    def action(self, text: str) -> Any | None: ...
    def value(self, state: Any) -> float: ...
    def advantage(self, state: Any, action: Any | None) -> float: ...
    def step(self, state: Any, action: Any, rng: random.Random) -> Any: ...
    def done(self, state: Any) -> bool: ...
    def success(self, state: Any) -> bool: ...


@dataclass
class NumberReach:
    """Scored against the exact optimum (``env.q_value``), as ``bench/commit_rules.py`` scores a decision."""

    name: str = "numberreach"
    model_dir: str = "foresight-numberreach"

    def starts(self, count: int, rng: random.Random) -> list[env.State]:
        pool = data.visited_states(rng, heldout=True)
        return [next(pool) for _ in range(count)]

    def observation(self, state: env.State) -> str:
        return data.prompt_for(state)

    def action(self, text: str) -> str | None:
        turn = parse_turn(text)
        return data.op_of_action(turn.action.arguments) if turn.action is not None else None

    def value(self, state: env.State) -> float:
        return max(env.q_value(state.x, state.t, state.n, op) for op in env.OPS)

    def advantage(self, state: env.State, action: str | None) -> float:
        q = env.q_value(state.x, state.t, state.n, action) if action else 0.0
        return q - self.value(state)

    def step(self, state: env.State, action: str, rng: random.Random) -> env.State:
        return env.step(state, action, rng).state

    def done(self, state: env.State) -> bool:
        return state.done

    def success(self, state: env.State) -> bool:
        return state.success


class Search:
    """Scored against the exact optimum of the search world (``World.q_value``)."""

    name = "search"
    model_dir = "foresight-search"

    def __init__(self) -> None:
        from reference.search import env as search_env

        self.env = search_env
        self.world = search_env.World()

    def starts(self, count: int, rng: random.Random) -> list[Any]:
        return self.env.balanced_starts(self.world, True, count, rng)

    def observation(self, state: Any) -> str:
        from reference.search import data as search_data

        return search_data.prompt_for(state)

    def action(self, text: str) -> Any | None:
        from reference.search.evaluate import turn_action

        return turn_action(parse_turn(text))

    def value(self, state: Any) -> float:
        return float(self.world.value(state))

    def advantage(self, state: Any, action: Any | None) -> float:
        q = float(self.world.q_value(state, action)) if action is not None else 0.0
        return q - self.value(state)

    def step(self, state: Any, action: Any, rng: random.Random) -> Any:
        return self.world.step(state, action, rng)[0]

    def done(self, state: Any) -> bool:
        return bool(self.world.done(state))

    def success(self, state: Any) -> bool:
        return bool(self.world.success(state))


def world(name: str) -> World:
    return NumberReach() if name == "numberreach" else Search()


def estimate(values: dict[int, float]) -> tuple[float, float]:
    """Mean and standard error of the episodes' estimates (each: the optimum's value from its start plus its
    decisions' exact advantages)."""
    return mean_se(list(values.values()))


def paired(a: dict[int, float], b: dict[int, float]) -> tuple[float, float]:
    """a − b over the episodes both played (the same starts), with the standard error of the difference."""
    common = sorted(set(a) & set(b))
    return mean_se([a[i] - b[i] for i in common]) if common else (float("nan"), float("nan"))
