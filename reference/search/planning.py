"""The planner in the search world: its configurations and one loop that plays them through
``planner.search.plan``, episode by episode, with the exact paired estimate of their success.
Pure Python (the sampler is given).
"""

from __future__ import annotations

import asyncio
import random

from planner.search import Algorithm, Budget, LookaheadContext, PlanConfig, plan
from planner.search.base import Calibrator, Candidate, Sampler
from reference.search import data
from reference.search.env import Action, State, World
from reference.search.evaluate import turn_action

PLANNERS: dict[str, PlanConfig] = {
    "greedy": PlanConfig(algorithm=Algorithm.GREEDY, max_tokens_per_turn=128),
    "best_of_4": PlanConfig(algorithm=Algorithm.BEST_OF_N, width=4, max_tokens_per_turn=128),
    "best_of_8": PlanConfig(algorithm=Algorithm.BEST_OF_N, width=8, max_tokens_per_turn=128),
    # two spans, then four, then two: commit at the first plan claiming 0.5 — a query whose passage ranks
    # first (0.7 with one search left, 0.97 with three) or second with three searches left (0.51; 0.38 with
    # two), so most states commit on the first two spans; otherwise at most 8 spans, as best-of-8 (at 0.6,
    # which left out the second rank: 43% of best-of-8's tokens, the same success — docs/search-world.md)
    "branch_commit": PlanConfig(algorithm=Algorithm.BRANCH_COMMIT, width=2, width_growth=2, commit_threshold=0.5,
                                budget=Budget(max_candidates=8), max_tokens_per_turn=128),
    # the search model's history is what its searches returned: the next level gets the prompt and the
    # imagined result, as a real search's would read
    "lookahead": PlanConfig(algorithm=Algorithm.LOOKAHEAD, width=8, branch=2, commit_threshold=0.6,
                            budget=Budget(max_depth=2, max_candidates=24, max_tokens=8192, deadline_s=600),
                            lookahead_context=LookaheadContext.OBSERVATIONS, max_tokens_per_turn=128),
}


def chosen_action(chosen: Candidate | None) -> Action | None:
    return turn_action(chosen.turn) if chosen else None


async def run_planner(world: World, sampler: Sampler, config: PlanConfig, starts: list[State], seed: int,
                      concurrency: int = 16, calibrator: Calibrator | None = None,
                      estimates: list[float] | None = None) -> tuple[float, float]:
    """Success rate and generated tokens per decision; ``estimates`` (if given) receives each
    episode's paired estimate (the optimum's exact value plus the exact advantages of its actions)."""
    sem = asyncio.Semaphore(concurrency)
    tokens: list[int] = []

    async def episode(i: int, start: State) -> bool:
        rng = random.Random(seed * 7919 + i)
        state, estimate = start, world.value(start)
        try:
            while not world.done(state):
                async with sem:
                    cfg = PlanConfig(**{**config.__dict__, "seed": rng.randrange(2**31)})
                    result = await plan(sampler, sampler.start(data.prompt_for(state)), cfg, calibrator)
                tokens.append(result.usage.completion_tokens)
                action = chosen_action(result.chosen)
                if action is None:
                    estimate -= world.value(state)
                    return False
                estimate += world.q_value(state, action) - world.value(state)
                state, _ = world.step(state, action, rng)
            return world.success(state)
        finally:
            if estimates is not None:
                estimates.append(estimate)

    results = await asyncio.gather(*(episode(i, s) for i, s in enumerate(starts)))
    return sum(results) / len(results), sum(tokens) / max(len(tokens), 1)
