"""greedy: one sample at temperature 0 — the paper's own inference, our baseline."""

from __future__ import annotations

from planner.search.base import Context, Decision, PlanResult, SearchState, unconfident


async def greedy(state: SearchState, prompt: Context) -> PlanResult:
    cands = await state.propose_turns(prompt, 1, temperature=0.0)
    if not cands:
        return state.result(Decision.BUDGET_EXHAUSTED, None)
    return state.result(Decision.NO_CONFIDENCE if unconfident(cands) else Decision.COMMIT, cands[0])
