"""Planning algorithms behind one entry point, :func:`plan`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from planner.search.base import (
    Algorithm,
    Budget,
    Calibrator,
    Candidate,
    Context,
    Decision,
    IdentityCalibrator,
    LookaheadContext,
    PlanConfig,
    PlanResult,
    Sample,
    SampleBatch,
    Sampler,
    SearchState,
    TextSampler,
    Usage,
)
from planner.search.best_of_n import best_of_n
from planner.search.branch_commit import branch_commit, largest_round
from planner.search.greedy import greedy
from planner.search.lookahead import lookahead
from planner.search.self_consistency import self_consistency

ALGORITHMS: dict[Algorithm, Callable[[SearchState, Context], Awaitable[PlanResult]]] = {
    Algorithm.GREEDY: greedy,
    Algorithm.BEST_OF_N: best_of_n,
    Algorithm.BRANCH_COMMIT: branch_commit,
    Algorithm.LOOKAHEAD: lookahead,
    Algorithm.SELF_CONSISTENCY: self_consistency,
}


async def plan(sampler: Sampler, prompt: Context, config: PlanConfig,
               calibrator: Calibrator | None = None) -> PlanResult:
    """Run one plan from ``prompt`` (a context ``sampler`` made: ``sampler.start(text)``, or the engine's
    rendered token ids); every call has its own state, so calls may run concurrently."""
    state = SearchState(sampler, calibrator or IdentityCalibrator(), config)
    return await ALGORITHMS[config.algorithm](state, prompt)


__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "Budget",
    "Calibrator",
    "Candidate",
    "Context",
    "Decision",
    "IdentityCalibrator",
    "LookaheadContext",
    "PlanConfig",
    "PlanResult",
    "Sample",
    "SampleBatch",
    "Sampler",
    "SearchState",
    "TextSampler",
    "Usage",
    "largest_round",
    "plan",
]
