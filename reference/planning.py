"""The planner on the reference environment: the configurations the benchmarks and
``foresight reference eval --planners`` play, one loop that plays them through
``planner.search.plan`` episode by episode, and a low-noise estimate of their
success against the exact one-step planner. Pure Python (the sampler is given).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from planner.search import Algorithm, Budget, LookaheadContext, PlanConfig, plan
from planner.search.base import Calibrator, Candidate, Context, Sampler
from reference import data
from reference import numberreach as env

PLANNERS: dict[str, PlanConfig] = {
    "greedy": PlanConfig(algorithm=Algorithm.GREEDY, max_tokens_per_turn=128),
    "best_of_4": PlanConfig(algorithm=Algorithm.BEST_OF_N, width=4, max_tokens_per_turn=128),
    "best_of_8": PlanConfig(algorithm=Algorithm.BEST_OF_N, width=8, max_tokens_per_turn=128),
    # two spans a round, commit at the first plan claiming 0.5, at most 16: the cheapest rule at least
    # as good as best_of_8 in bench/commit_rules.py's replay of the shipped model (--seed 11: 44% of
    # its tokens, loss 0.0124 against 0.0147); a plan that hits with a step to spare claims 0.78 here
    "branch_commit": PlanConfig(algorithm=Algorithm.BRANCH_COMMIT, width=2, commit_threshold=0.5,
                                budget=Budget(max_candidates=16), max_tokens_per_turn=128),
    # discount 0.85: an imagined next state is reached only if the action does not stall (p 0.15),
    # and the shipped model claims hits at ended episodes it never saw (docs/planning.md);
    # up to 4 rounds of 16 roots while none claims any chance (a plan that hits claims at least
    # 0.85^6 ≈ 0.38 here): more first actions to imagine the future of where no plan hits
    "lookahead": PlanConfig(algorithm=Algorithm.LOOKAHEAD, width=16, branch=5, discount=0.85, root_rounds=4,
                            commit_threshold=0.35,
                            budget=Budget(max_depth=2, max_candidates=4 * 16 + 5 * 16, max_tokens=16384,
                                          deadline_s=600),
                            lookahead_context=LookaheadContext.OBSERVATION, max_tokens_per_turn=128),
}


def chosen_op(chosen: Candidate | None) -> str | None:
    """The environment operation a plan's chosen turn takes (None: no usable action)."""
    action = chosen.turn.action if chosen else None
    return data.op_of_action(action.arguments) if action else None


def one_step_advantage(state: env.State, op: str | None) -> float:
    """``one_step_q(s, op) − one_step_value(s)``; no action forfeits the state's whole value."""
    q = env.one_step_q(state.x, state.t, state.n, op) if op else 0.0
    return q - env.one_step_value(state.x, state.t, state.n)


def mean_se(xs: list[float]) -> tuple[float, float]:
    """Mean and its standard error."""
    mean = sum(xs) / len(xs)
    return mean, (sum((x - mean) ** 2 for x in xs) / max(len(xs) - 1, 1) / len(xs)) ** 0.5


async def run_planner(sampler: Sampler, config: PlanConfig, starts: list[env.State], seed: int,
                      concurrency: int = 16, calibrator: Calibrator | None = None,
                      stall_prob: float = env.STALL_PROB, gains: list[float] | None = None,
                      start: Callable[[str], Context] | None = None) -> tuple[float, float]:
    """Success rate and generated tokens per decision; ``gains`` (if given) receives, per episode, the
    sum of the exact one-step planner's advantages of the actions taken (see :func:`paired_estimate`);
    ``start`` makes an observation the sampler's prompt (default ``sampler.start``: the text as it is;
    a chat model's caller renders it with the chat template)."""
    begin = start or sampler.start
    if gains is not None and stall_prob != env.STALL_PROB:
        raise ValueError("one-step advantages are exact only in the world the model learnt")
    sem = asyncio.Semaphore(concurrency)
    tokens: list[int] = []

    async def episode(i: int, start: env.State) -> bool:
        rng = random.Random(seed * 7919 + i)
        state, gain = start, 0.0
        try:
            while not state.done:
                async with sem:
                    cfg = PlanConfig(**{**config.__dict__, "seed": rng.randrange(2**31)})
                    result = await plan(sampler, begin(data.prompt_for(state)), cfg, calibrator)
                tokens.append(result.usage.completion_tokens)
                op = chosen_op(result.chosen)
                gain += one_step_advantage(state, op)
                if op is None:
                    return False
                state = env.step(state, op, rng, stall_prob).state
            return state.success
        finally:
            if gains is not None:
                gains.append(gain)

    results = await asyncio.gather(*(episode(i, s) for i, s in enumerate(starts)))
    return sum(results) / len(results), sum(tokens) / max(len(tokens), 1)


def one_step_expectation(starts: list[env.State]) -> float:
    """The exact one-step planner's expected success from ``starts``."""
    return sum(env.one_step_value(s.x, s.t, s.n) for s in starts) / len(starts)


def paired_estimate(starts: list[env.State], gains: list[float]) -> tuple[float, float]:
    """A policy's success rate estimated as the exact one-step planner's value from the same starts plus
    the mean of its episodes' one-step advantages (the performance-difference identity: unbiased, and
    much less noisy than a success rate, since most actions differ little from the planner's), with
    one standard error. The estimate minus the one-step planner's exact value is their difference."""
    mean, se = mean_se(gains)
    return one_step_expectation(starts) + mean, se
