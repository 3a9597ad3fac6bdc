"""FC-RL's reward and baseline (pure): outcomes only, RLCR's calibration term, leave-one-out baselines."""

from __future__ import annotations

import random

import pytest

from reference import numberreach as env
from reference.fc_rl import reward, rloo, score


def test_reward_pays_success_and_a_confidence_that_was_right() -> None:
    assert reward(True, 1.0, True) == 1.0
    assert reward(True, 0.5, True, weight=1.0) == pytest.approx(0.75)  # RLCR's own weight
    assert reward(True, 0.5, True) == pytest.approx(0.875)
    assert reward(False, 0.0, True) == 0.0
    assert reward(False, 0.9, True) == pytest.approx(-0.405)
    # saying 0% everywhere still leaves success worth more than failure (with RLCR's weight, it would not)
    assert reward(True, 0.0, True) > reward(False, 0.0, True)
    assert reward(True, 0.0, True, weight=1.0) == reward(False, 0.0, True, weight=1.0)
    # a proper scoring rule: for a plan with chance p the expected reward is highest at confidence p
    p = 0.3
    best = max((i / 100 for i in range(101)),
               key=lambda c: p * reward(True, c, True) + (1 - p) * reward(False, c, True))
    assert best == pytest.approx(p)
    # a turn without a usable plan, or without a confidence, is the worst outcome of all
    assert reward(True, None, True) == reward(False, 0.5, False) == -1.0


def test_rloo_baselines_are_the_mean_of_the_others() -> None:
    assert rloo([1.0, 0.0, 0.0, 0.0]) == pytest.approx([1.0, -1 / 3, -1 / 3, -1 / 3])
    assert rloo([0.5, 0.5]) == [0.0, 0.0]
    assert rloo([2.0]) == [0.0]
    assert sum(rloo([0.3, -1.0, 0.8, 0.1])) == pytest.approx(0.0)


def test_a_turns_reward_comes_from_executing_its_plan_not_from_the_exact_chance() -> None:
    state = env.State(5, 40, 6)
    turn = ("<imaginary>*2 10, *2 20, *2 40</imaginary>\n<analysis>3 of 6, hit</analysis>\n"
            "<confidence>99%</confidence>\n<think>first *2</think>\n"
            '<tool_call>{"name": "apply", "arguments": {"op": "*2"}}</tool_call>')
    outcomes = [score(state, turn, random.Random(i)) for i in range(400)]
    assert all(valid for *_, valid in outcomes)
    rate = sum(ok for _, ok, _, _ in outcomes) / len(outcomes)
    # executed with stalls: it succeeds as often as the environment lets it (p ≈ 0.994), one draw at a time
    assert rate == pytest.approx(env.plan_success_prob(3, 6, True), abs=0.02)
    wrong = turn.replace("*2 20, *2 40", "*2 20, *3 40")  # an imagined 20 × 3 = 40: the plan does not reach 40
    assert not any(score(state, wrong, random.Random(i))[1] for i in range(50))
    r, ok, conf, valid = score(state, "no turn at all", random.Random(0))
    assert (r, ok, conf, valid) == (-1.0, False, None, False)


def test_a_search_turns_plan_is_searched_until_its_passage_returns_then_answered() -> None:
    from reference.rl_worlds import rl_world, search_plan_succeeds
    from reference.search import data as sdata
    from reference.search import env as senv

    world = rl_world("search")
    kb = senv.World()
    state = next(s for s in world.visited(random.Random(0)) if kb.best_query(s.question) and not s.observed)
    query, answer = kb.best_query(state.question), kb.answer(state.question)
    assert answer is not None and query is not None
    good = sdata.make_turn(kb, state, sdata.Plan(query, answer)).completion
    outcomes = [score(state, good, random.Random(i), world) for i in range(300)]
    rate = sum(ok for _, ok, _, _ in outcomes) / len(outcomes)
    # carried out with real retrieval draws: as often as the world lets it, never read from the oracle
    assert rate == pytest.approx(kb.plan_success(state, query, answer), abs=0.09)
    assert all(valid for *_, valid in outcomes) and world.prompt(state).startswith("<information>question: ")
    assert not any(search_plan_succeeds(kb, state, (query, "Nobody"), random.Random(i)) for i in range(30))
    r, ok, _, valid = score(state, "<search>no imagination</search>", random.Random(0), world)
    assert (r, ok, valid) == (-1.0, False, False)
