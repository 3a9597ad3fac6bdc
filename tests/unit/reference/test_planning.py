"""reference/planning.py's paired estimate: the exact one-step planner's value plus the one-step advantages
a policy's episodes collect must estimate that policy's success, or the lookahead verdict means nothing."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest

from planner.search import Algorithm, PlanConfig, Sample, SampleBatch, TextSampler
from reference import data
from reference import numberreach as env
from reference.planning import paired_estimate, run_planner


class Reactive(TextSampler):
    """A model that always writes the reactive heuristic's plan (with its exact confidence)."""

    async def sample(self, prompt: str, n: int, *, stop: Sequence[str], max_tokens: int, temperature: float,
                     top_p: float = 1.0, seed: int | None = None) -> SampleBatch:
        state = data.parse_prompt(prompt)
        assert state is not None
        text = data.make_turn(state, env.reactive_plan(state.x, state.t, state.n)).completion
        return SampleBatch([Sample(text, 1, "stop") for _ in range(n)], 1)


def test_paired_estimate_recovers_the_reactive_heuristics_exact_success() -> None:
    pool = env.start_states(heldout=True)
    starts = [random.Random(5).choice(pool) for _ in range(1)] * 1500
    gains: list[float] = []
    config = PlanConfig(algorithm=Algorithm.GREEDY, max_tokens_per_turn=128)
    played, tokens = asyncio.run(run_planner(Reactive(), config, starts, seed=2, gains=gains))
    estimate, se = paired_estimate(starts, gains)
    exact = env.reactive_value(starts[0].x, starts[0].t, starts[0].n)
    one_step = env.one_step_value(starts[0].x, starts[0].t, starts[0].n)
    assert len(gains) == len(starts) and tokens == 1
    assert abs(one_step - exact) > 3 * se  # the estimate is not the one-step planner's value
    assert estimate == pytest.approx(exact, abs=3 * se + 1e-9)
    assert played == pytest.approx(exact, abs=0.05)


def test_gains_refused_in_another_world() -> None:
    with pytest.raises(ValueError, match="world"):
        asyncio.run(run_planner(Reactive(), PlanConfig(algorithm=Algorithm.GREEDY), [], 0, stall_prob=0.3, gains=[]))
