"""lookahead (depth ≥ 2): imagine the consequences of the best candidates, back up the value.

Level 1: K whole turns in one call; while the best of them is below ``commit_threshold``, another
K (at most ``root_rounds`` rounds: where no plan reaches the goal, more actions are worth imagining
the future of). Then, while depth and budget allow, for the
top-b candidates of the deepest level with distinct actions (expanding two
candidates that take the same action would imagine the same future twice; one
engine call per level, batched by candidate; the budget left is split evenly
between the branches, which run side by side): let the model imagine the
observation its action leads to (``<information>…</information>``), sample K next
turns from there, and back the value up (a leaf's value is its calibrated
confidence; an expanded candidate's value is the better of its own and the best
among its children, each multiplied by ``discount`` — a plan that already reaches
the goal keeps its value when the futures sampled after it are worse; the model's
own imagination stands in for the simulator, and ``discount`` < 1 says how much
less an imagined future is trusted than a plan the model wrote out in full: the
transition to it may not happen as imagined, and a model asked about a state it
never met can claim success there). Commit to the first-level candidate with the
highest value; of equal values, the higher own confidence.
"""

from __future__ import annotations

import asyncio
import json

from planner.search.base import (
    Candidate,
    Context,
    Decision,
    LookaheadContext,
    PlanResult,
    Sampler,
    SearchState,
    ranked,
    unconfident,
)

OBSERVATION_OPEN = "\n<information>"
OBSERVATION_CLOSE = "</information>"
OBSERVATION_MAX_TOKENS = 64


def next_prompt(sampler: Sampler, prompt: Context, after: Context, observation: str,
                context: LookaheadContext) -> Context:
    """The prompt of the next level: the observation written as the environment writes it, after the whole
    history (``after``: the prompt and the turn as the engine wrote it), after the prompt, or alone."""
    obs = f"<information>{observation.strip()}</information>\n"
    if context is LookaheadContext.OBSERVATION:
        return sampler.start(obs)
    if context is LookaheadContext.OBSERVATIONS:
        return sampler.extend(prompt, text=obs)
    return sampler.extend(after, text="\n" + obs)


async def _imagine(state: SearchState, after: Context, tokens: int) -> tuple[str | None, int]:
    """The observation the model imagines after a turn (``after``: the prompt and the turn), and the tokens
    that cost."""
    n, per = state.affordable(1, OBSERVATION_MAX_TOKENS, min_per_sample=1, tokens=tokens)
    if n == 0:
        return None, 0
    (s,) = await state.sample(state.sampler.extend(after, text=OBSERVATION_OPEN), 1, (OBSERVATION_CLOSE,), per,
                              temperature=0.0, count_candidates=False)
    text = s.text.split(OBSERVATION_CLOSE)[0]
    return (text if text.strip() else None), s.tokens


async def _deepen(state: SearchState, cand: Candidate, depth: int, share: tuple[int, int]) -> list[Candidate]:
    """Imagine ``cand``'s next observation and sample turns there, within ``share`` (candidates,
    tokens): this branch's part of the budget, so branches expanded side by side cannot overrun it."""
    candidates, tokens = share
    after = state.after(cand)
    observation, spent = await _imagine(state, after, tokens)
    if observation is None:
        return []
    child_prompt = next_prompt(state.sampler, cand.prompt, after, observation, state.config.lookahead_context)
    return await state.propose_turns(child_prompt, min(state.config.width, candidates), depth=depth,
                                     parent=cand.id, tokens=tokens - spent)


def shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal whole shares, the larger ones first."""
    q, r = divmod(total, parts)
    return [q + (i < r) for i in range(parts)]


def _back_up(state: SearchState, cand: Candidate) -> float:
    own = cand.calibrated_confidence if cand.calibrated_confidence is not None else 0.0
    kids = [state.candidates[i] for i in cand.children]
    cand.value = max([own, *(state.config.discount * _back_up(state, k) for k in kids)])
    return cand.value


def distinct_actions(cands: list[Candidate], b: int) -> list[Candidate]:
    """The ``b`` best candidates (by score) whose actions differ, among those that have one (the same action
    from the same prompt imagines the same future; contexts are compared by value)."""
    picked: list[Candidate] = []
    seen: set[tuple[Context, str, str | None, str]] = set()
    for c in sorted(cands, key=lambda c: (-c.score, c.id)):
        action = c.turn.action
        if action is None:
            continue
        what = action.content.strip() if action.arguments is None else json.dumps(action.arguments, sort_keys=True,
                                                                                 default=str)
        key = (c.prompt, action.kind, action.name, what)
        if key in seen:
            continue
        seen.add(key)
        picked.append(c)
        if len(picked) == b:
            break
    return picked


async def lookahead(state: SearchState, prompt: Context) -> PlanResult:
    cfg = state.config
    roots = await state.propose_turns(prompt, cfg.width)
    if unconfident(roots):  # nothing to rank imagined futures by: more rounds or levels would not change it
        return state.result(Decision.NO_CONFIDENCE, ranked(roots)[0])
    for _ in range(cfg.root_rounds - 1):
        if not roots or ranked(roots)[0].score >= cfg.commit_threshold:
            break
        more = await state.propose_turns(prompt, cfg.width)
        if not more:
            break
        roots += more
    if not roots:
        return state.result(Decision.BUDGET_EXHAUSTED, None)
    frontier = roots
    exhausted = False
    for depth in range(2, cfg.budget.max_depth + 1):
        top = distinct_actions(frontier, cfg.branch)
        if not top or state.candidates_left <= 0 or state.tokens_left <= cfg.max_tokens_per_turn:
            exhausted = bool(top)
            break
        top = top[: state.candidates_left]  # a branch without a candidate to spend imagines for nothing
        cands, tokens = shares(state.candidates_left, len(top)), shares(state.tokens_left, len(top))
        levels = await asyncio.gather(*(_deepen(state, c, depth, (k, t))
                                        for c, k, t in zip(top, cands, tokens, strict=True)))
        frontier = [c for level in levels for c in level]
        if not frontier:
            exhausted = True
            break
    for root in roots:
        _back_up(state, root)
    decision = Decision.BUDGET_EXHAUSTED if exhausted else Decision.COMMIT
    return state.result(decision, ranked(roots)[0])
