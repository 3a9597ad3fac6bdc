"""bench/commit_rules.py replays branch_commit and best_of_n offline: its replay must decide and
count tokens exactly as the planner itself does on the same samples, or its frontier means nothing."""

from __future__ import annotations

import asyncio
import importlib.util
import random
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from planner.format import CONFIDENCE_STOP, parse_turn
from planner.search import Algorithm, Budget, PlanConfig, Sample, SampleBatch, TextSampler, plan
from planner.votes import vote_key
from reference import data
from reference import numberreach as env
from reference.evaluate import action_op

REPO = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("commit_rules", REPO / "bench" / "commit_rules.py")
assert _spec and _spec.loader
bench = importlib.util.module_from_spec(_spec)
sys.modules["commit_rules"] = bench  # dataclasses look their module up while the class is built
_spec.loader.exec_module(bench)


class Replay(TextSampler):
    """Serves recorded whole turns in order, one character per token: a span call gets the next
    turn's world-model span, a continuation call the rest of the turn whose span ends the prompt."""

    def __init__(self, turns: list[str]) -> None:
        self.turns, self.next = turns, 0

    async def sample(self, prompt: str, n: int, *, stop: Sequence[str], max_tokens: int, temperature: float,
                     top_p: float = 1.0, seed: int | None = None) -> SampleBatch:
        if prompt.endswith(CONFIDENCE_STOP):
            (text,) = [t[len(span(t)):] for t in self.turns if prompt.endswith(span(t))][:1]
            return SampleBatch([Sample(text, len(text), "stop")], len(prompt))
        out = []
        for _ in range(n):
            t = self.turns[self.next]
            self.next += 1
            text = span(t) if CONFIDENCE_STOP in stop else t
            out.append(Sample(text, len(text), "stop"))
        return SampleBatch(out, len(prompt))


def span(turn: str) -> str:
    return turn[: turn.index(CONFIDENCE_STOP) + len(CONFIDENCE_STOP)]


def recorded(state: env.State, count: int, rng: random.Random) -> list[str]:
    return [data.make_turn(state, data.sample_plan(state, rng)).completion for _ in range(count)]


def drawn(turns: list[str]) -> list[object]:
    out = []
    for t in turns:
        parsed = parse_turn(t)
        out.append(bench.Drawn(parsed.confidence, parsed.action is not None, len(parsed.problems), action_op(parsed),
                               len(span(t)), len(t)))
    return out


@pytest.mark.parametrize(("width", "threshold", "cap", "growth"),
                         [(1, 0.5, 8, 1), (2, 0.9, 8, 1), (4, 0.8, 12, 1), (3, 0.35, 8, 1), (2, None, 8, 1),
                          (1, 0.9, 15, 2), (2, 0.8, 14, 2), (1, 0.5, 13, 3)])
def test_branch_commit_replay_matches_the_planner(width: int, threshold: float | None, cap: int,
                                                  growth: int) -> None:
    rng = random.Random(width * 100 + cap)
    starts = env.start_states(heldout=True)
    commits = exhausted = 0
    for _ in range(40):
        start = rng.choice(starts)
        state = env.State(start.x, start.t, rng.randint(1, 6))
        turns = recorded(state, 16, rng)
        # None: the threshold is a confidence the model wrote (commit at equality, as the planner does)
        at = threshold if threshold is not None else max(d.confidence or 0.0 for d in drawn(turns)[:cap])
        cfg = PlanConfig(algorithm=Algorithm.BRANCH_COMMIT, width=width, width_growth=growth, commit_threshold=at,
                         budget=Budget(max_candidates=cap, max_tokens=100_000), max_tokens_per_turn=1000)
        replay = Replay(turns)
        result = asyncio.run(plan(replay, data.prompt_for(state), cfg))
        used = bench.branch_commit(width, at, cap, growth=growth)(drawn(turns))
        pick = bench.chosen(used)
        assert result.chosen is not None
        assert action_op(result.chosen.turn) == pick.op
        assert result.usage.candidates == len(used)
        assert result.usage.completion_tokens == sum(d.span_tokens for d in used) + pick.turn_tokens - pick.span_tokens
        assert result.usage.engine_calls == bench.rounds(
            [bench.Row(state, {}, drawn(turns))], width, at, cap, growth)
        commits += result.decision.value == "commit"
        exhausted += result.decision.value == "budget_exhausted"
    assert commits and (exhausted or threshold is None)  # both of the planner's exits were exercised


def test_best_of_n_replay_matches_the_planner() -> None:
    rng = random.Random(7)
    for _ in range(20):
        state = env.State(rng.randint(2, 15), rng.randint(20, 99), 6)
        turns = recorded(state, 8, rng)
        cfg = PlanConfig(algorithm=Algorithm.BEST_OF_N, width=8, max_tokens_per_turn=1000,
                         budget=Budget(max_candidates=8, max_tokens=100_000))
        result = asyncio.run(plan(Replay(turns), data.prompt_for(state), cfg))
        row = bench.Row(state, {op: 0.5 for op in env.OPS}, drawn(turns))
        loss, tokens = bench.score([row], bench.best_of(8), whole_turns=True)
        assert result.chosen is not None
        assert action_op(result.chosen.turn) == bench.chosen(drawn(turns)).op
        assert result.usage.completion_tokens == tokens == sum(len(t) for t in turns)
        assert loss == 0.0  # every action is worth the same here


def test_oracle_stops_at_the_first_choice_as_good_as_best_of_8() -> None:
    state = env.State(7, 52, 6)
    q = {op: env.q_value(state.x, state.t, state.n, op) for op in env.OPS}
    best, worst = max(q, key=q.__getitem__), min(q, key=q.__getitem__)
    d = [bench.Drawn(0.0, True, 0, worst, 5, 9)] * 2 + [bench.Drawn(0.5, True, 0, best, 5, 9)] * 6
    assert bench.oracle_spans([bench.Row(state, q, d)]) == 3
    assert bench.score([bench.Row(state, q, d)], bench.best_of(2), whole_turns=True) == (q[best] - q[worst], 18)


def test_novelty_stop_ends_widening_once_the_model_repeats_itself() -> None:
    def d(plan: str) -> object:
        return bench.Drawn(0.0, True, 0, "+1", 5, 9, plan)

    repeating = [d("a"), d("a"), d("a"), d("a")] + [d(str(i)) for i in range(12)]
    novel = [d(str(i)) for i in range(16)]
    assert bench.unseen_share(repeating[:4]) == 0.0
    assert bench.unseen_share([d("a"), d("a"), d("b"), d("c")]) == 0.5
    assert len(bench.branch_commit(2, 0.9, 16, novelty=0.0)(repeating)) == 2  # "a", "a": nothing new
    assert len(bench.branch_commit(2, 0.9, 16, novelty=0.0)(novel)) == 16  # every plan new: up to the cap
    assert len(bench.branch_commit(2, 0.9, 16)(repeating)) == 16  # off by default


@pytest.mark.parametrize(("width", "growth", "threshold", "cap"),
                         [(2, 2, 0.6, 14), (2, 1, 0.5, 8), (3, 2, 0.8, 15), (8, 1, 0.0, 8), (2, 2, 1.0, 14)])
def test_self_consistency_replay_matches_the_planner(width: int, growth: int, threshold: float, cap: int) -> None:
    rng = random.Random(width * 10 + cap)
    starts = env.start_states(heldout=True)
    commits = 0
    for _ in range(30):
        start = rng.choice(starts)
        state = env.State(start.x, start.t, rng.randint(1, 6))
        turns = recorded(state, 16, rng)
        cfg = PlanConfig(algorithm=Algorithm.SELF_CONSISTENCY, width=width, width_growth=growth,
                         commit_threshold=threshold, budget=Budget(max_candidates=cap, max_tokens=100_000),
                         max_tokens_per_turn=1000)
        result = asyncio.run(plan(Replay(turns), data.prompt_for(state), cfg))
        d = [bench.Drawn(x.confidence, x.has_action, x.problems, x.op, x.span_tokens, x.turn_tokens,
                         vote=vote_key(parse_turn(t).action)) for x, t in zip(drawn(turns), turns, strict=True)]
        used = bench.self_consistency(width, threshold, cap, growth=growth)(d)
        pick = bench.voted(used)
        assert result.chosen is not None and action_op(result.chosen.turn) == pick.op
        assert result.usage.candidates == len(used)
        assert result.usage.completion_tokens == sum(x.turn_tokens for x in used)
        assert result.usage.engine_calls == bench.rounds([bench.Row(state, {}, d)], width, threshold, cap, growth,
                                                         voting=True)
        commits += result.decision.value == "commit"
    assert commits or threshold == 1.0  # a share of 1.0 commits only on unanimity
