"""best_of_n: N whole turns in one engine call; commit to the most confident."""

from __future__ import annotations

from planner.search.base import Context, Decision, PlanResult, SearchState, ranked, unconfident


async def best_of_n(state: SearchState, prompt: Context) -> PlanResult:
    cands = await state.propose_turns(prompt, state.config.width)
    if not cands:
        return state.result(Decision.BUDGET_EXHAUSTED, None)
    return state.result(Decision.NO_CONFIDENCE if unconfident(cands) else Decision.COMMIT, ranked(cands)[0])
