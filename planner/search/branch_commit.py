"""branch_commit (DESIGN §3): propose world-model spans, commit when confident, else widen.

1. Propose K world-model spans in one call (stop at ``</confidence>``; the shared
   prompt is prefix-cached by the engine).
2. Judge each by its calibrated confidence.
3. Commit when the best reaches ``commit_threshold`` and beats the runner-up by
   ``margin``: only that candidate is continued through think and action.
4. Otherwise widen (another K spans, or K times ``width_growth`` to the round's power) while the
   budget lasts.
5. At the budget's end, continue the best span found and say so
   (``budget_exhausted``).
6. A first round in which no span states a confidence or begins an ``<imaginary>`` ends the plan
   (``no_confidence``): the model does not write the format, and every wider round would run each span
   to its token limit. Its best span is returned as it is, not continued.

Only the committed candidate pays for its policy span, which is where the token
saving over best_of_n comes from.
"""

from __future__ import annotations

from planner.search.base import (
    Candidate,
    Context,
    Decision,
    PlanConfig,
    PlanResult,
    SearchState,
    ranked,
    unconfident,
)


def confident(best: Candidate, runner_up: Candidate | None, threshold: float, margin: float) -> bool:
    if best.calibrated_confidence is None or best.calibrated_confidence < threshold:
        return False
    if runner_up is None or runner_up.calibrated_confidence is None:
        return True
    return best.calibrated_confidence - runner_up.calibrated_confidence >= margin


def largest_round(config: PlanConfig) -> int:
    """The most spans one proposal round can draw in one engine call (rounds grow by ``width_growth``,
    the last is cut to the candidates left): what a server's per-request ``n`` limit must allow."""
    width, drawn, largest = config.width, 0, 0
    while drawn < config.budget.max_candidates:
        n = min(width, config.budget.max_candidates - drawn)
        largest, drawn, width = max(largest, n), drawn + n, width * config.width_growth
    return largest


async def branch_commit(state: SearchState, prompt: Context) -> PlanResult:
    cfg = state.config
    spans: list[Candidate] = []
    width = cfg.width
    while True:
        new = await state.propose_spans(prompt, width)
        width *= cfg.width_growth
        spans.extend(new)
        if unconfident(spans):  # every span so far: a confident earlier round is never thrown away
            return state.result(Decision.NO_CONFIDENCE, ranked(spans)[0])
        order = ranked(spans)
        if order and confident(order[0], order[1] if len(order) > 1 else None, cfg.commit_threshold, cfg.margin):
            chosen = await state.complete(order[0])
            return state.result(Decision.COMMIT, chosen)
        if (not new or state.candidates_left <= 0 or state.tokens_left <= cfg.max_tokens_per_turn
                or state.time_left() <= 0):
            break
    if not spans:
        return state.result(Decision.BUDGET_EXHAUSTED, None)
    chosen = await state.complete(ranked(spans)[0])
    return state.result(Decision.BUDGET_EXHAUSTED, chosen)
