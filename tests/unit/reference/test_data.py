"""Generated turns parse cleanly with the project's parser and agree with the simulator."""

from __future__ import annotations

import pytest

from planner import parse_turn
from reference import data
from reference import numberreach as env


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


