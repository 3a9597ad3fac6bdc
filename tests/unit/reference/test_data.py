"""Generated turns parse cleanly with the project's parser and agree with the simulator."""

from __future__ import annotations

import random

import pytest

from planner import parse_turn
from reference import data, env


@pytest.mark.parametrize("stage", [2, 3])
def test_every_turn_parses_and_labels_agree(stage: int) -> None:
    for ex in data.stage_examples(stage, 400, seed=11):
        turn_text = ex.completion.split("\n<information>")[0]
        t = parse_turn(turn_text)
        assert t.problems == (), (turn_text, t.problems)
        steps = data.parse_rollout(t.imaginary or "")
        x = ex.state.x
        for op, value in steps:
            x = env.apply_op(x, op)
            assert value == x
        ro = env.rollout_plan(ex.state.x, ex.state.t, ex.plan)
        p = env.plan_success_prob(len(ro.ops), ex.state.n, ro.reaches)
        assert t.confidence == pytest.approx(round(p, 2))
        assert t.action is not None and data.op_of_action(t.action.arguments) == ex.plan[0]


@pytest.mark.parametrize("stage", [1, 2])
def test_plans_stop_only_at_the_target_a_bust_or_the_last_step(stage: int) -> None:
    """Random plans use every step left, so "stop writing the rollout" is decided by the values alone."""
    for ex in data.stage_examples(stage, 400, seed=2):
        ro = env.rollout_plan(ex.state.x, ex.state.t, ex.plan)
        assert ro.reaches or ro.busted or len(ro.ops) == ex.state.n, ex
    lengths = {len(data.random_plan(env.State(7, 52, 6), random.Random(i), full=False)) for i in range(50)}
    assert len(lengths) > 1  # the older variant: random lengths


def test_observation_examples_predict_the_no_stall_next_state() -> None:
    with_obs = [e for e in data.stage_examples(2, 300, seed=3) if "\n<information>" in e.completion]
    assert with_obs
    for e in with_obs:
        nxt = data.parse_prompt(e.completion.split("\n<information>")[1])
        assert nxt is not None
        assert nxt.x == env.apply_op(e.state.x, e.plan[0]) and nxt.n == e.state.n - 1


def test_training_data_excludes_heldout_pairs() -> None:
    held = env.heldout_pairs()
    for stage in (1, 2, 3):
        assert all((e.state.x, e.state.t) not in held for e in data.stage_examples(stage, 300, seed=5))
    assert all((e.state.x, e.state.t) in held for e in data.stage_examples(2, 100, seed=5, heldout=True))


def test_prompt_round_trip() -> None:
    s = env.State(7, 52, 6)
    assert data.parse_prompt(data.prompt_for(s)) == s


@pytest.mark.parametrize("heldout", [False, True])
def test_ended_turns_answer_with_certainty_and_keep_the_split(heldout: bool) -> None:
    """Turns at an ended episode (what lookahead imagines after a last step): 100% only at the target."""
    held = env.heldout_pairs()
    ended = [e for e in data.stage_examples(2, 1500, seed=4, heldout=heldout, ended_share=0.2) if not e.plan]
    assert len(ended) > 20  # held-out pairs are 15% of all: fewer ended states land there
    verdicts = set()
    for e in ended:
        assert e.state.done and ((e.state.x, e.state.t) in held) == heldout
        t = parse_turn(e.completion)
        assert t.problems == (), (e.completion, t.problems)
        assert t.confidence == (1.0 if e.state.x == e.state.t else 0.0)
        assert t.action is not None and t.action.kind == "answer"
        assert (t.imaginary or "").split()[0] == str(e.state.x)  # judged on the last value, as rollouts are
        verdicts.add(t.action.content)
        assert data.parse_prompt(e.prompt) == e.state
    # the split is over in-bounds pairs: busted states (x outside 1..199) fall on the training side
    assert verdicts == ({"hit", "miss"} if heldout else {"hit", "miss", "bust"})
    assert any(e.state.n == 0 and e.state.x != e.state.t for e in ended)  # out of steps short of the target


def test_an_ended_turn_needs_an_ended_episode() -> None:
    with pytest.raises(ValueError, match="not over"):
        data.make_ended_turn(env.State(7, 52, 1))
    assert "100%" in data.make_ended_turn(env.State(52, 52, 0)).completion
    assert "<confidence>0%</confidence>" in data.make_ended_turn(env.State(51, 52, 0)).completion
