"""self_consistency: whole turns voted on by their actions, each vote weighted by the turn's calibrated
confidence; stop as soon as one action leads.

1. Draw ``width`` whole turns in one engine call (later rounds ``width_growth`` times the previous one's,
   as ``branch_commit`` widens), within ``budget.max_candidates`` and ``budget.max_tokens``.
2. Tally the actions (:mod:`planner.votes`: the same tool call, query or answer is one vote), each turn
   weighing its calibrated confidence — plain counts where no turn claims any chance.
3. Commit once the leading action has at least two turns, its weighted share of the votes reaches
   ``commit_threshold`` and beats the runner-up's share by ``margin``; the chosen turn is the leading
   action's most confident one.
4. Otherwise widen while the budget lasts; at its end, return the leading action's best turn
   (``budget_exhausted``).

A model that writes no foresight at all (no turn states a confidence or imagines) still votes, by counts,
as the peers' self-consistency does; its decision says ``no_confidence``.
"""

from __future__ import annotations

from planner.search.base import Candidate, Context, Decision, PlanResult, SearchState, ranked, unconfident
from planner.votes import Vote, tally, vote_key


def agreed(votes: list[Vote], threshold: float, margin: float) -> bool:
    """Whether the leading vote stops the plan (two turns at least, its share, its lead)."""
    if not votes or len(votes[0].turns) < 2 or votes[0].share < threshold:
        return False
    runner_up = votes[1].share if len(votes) > 1 else 0.0
    return votes[0].share - runner_up >= margin


def _pick(turns: list[Candidate], votes: list[Vote]) -> Candidate:
    if not votes:  # no turn has an action: the best turn as ranked
        return ranked(turns)[0]
    leading = set(votes[0].turns)
    return ranked([c for c in turns if c.id in leading])[0]


async def self_consistency(state: SearchState, prompt: Context) -> PlanResult:
    cfg = state.config
    turns: list[Candidate] = []
    width = cfg.width
    while True:
        new = await state.propose_turns(prompt, width)
        width *= cfg.width_growth
        for c in new:
            c.vote = vote_key(c.turn.action)
        turns.extend(new)
        votes = tally([(c, c.vote) for c in turns])
        if agreed(votes, cfg.commit_threshold, cfg.margin):
            decision = Decision.NO_CONFIDENCE if unconfident(turns) else Decision.COMMIT
            return state.result(decision, _pick(turns, votes), votes)
        if (not new or state.candidates_left <= 0 or state.tokens_left < cfg.max_tokens_per_turn
                or state.time_left() <= 0):
            break
    if not turns:
        return state.result(Decision.BUDGET_EXHAUSTED, None)
    decision = Decision.NO_CONFIDENCE if unconfident(turns) else Decision.BUDGET_EXHAUSTED
    return state.result(decision, _pick(turns, votes), votes)
