"""The NumberReach simulator against hand-worked cases and brute force."""

from __future__ import annotations

import itertools
import random

import pytest

from reference import numberreach as env
from reference.numberreach import OPS, State


def test_hand_worked_transitions() -> None:
    assert [env.apply_op(7, op) for op in OPS] == [8, 9, 14, 21, 6]
    always_move = random.Random(0)
    always_move.random = lambda: 0.99  # type: ignore[method-assign]
    r = env.step(State(7, 21, 6), "*3", always_move)
    assert r.state == State(21, 21, 5) and r.state.success and not r.stalled
    r = env.step(State(70, 90, 6), "*3", always_move)
    assert r.busted and r.state.done and not r.state.success
    stall = random.Random(0)
    stall.random = lambda: 0.01  # type: ignore[method-assign]
    r = env.step(State(7, 21, 6), "*3", stall)
    assert r.stalled and r.state == State(7, 21, 5)


def test_a_deployed_world_may_stall_more_or_less_often() -> None:
    draw = random.Random(0)
    draw.random = lambda: 0.3  # type: ignore[method-assign]  # stalls at 0.45, not at the model's 0.15
    assert not env.step(State(7, 21, 6), "*3", draw).stalled
    assert env.step(State(7, 21, 6), "*3", draw, stall_prob=0.45).stalled
    rng = random.Random(1)
    stalls = sum(env.step(State(7, 99, 6), "+1", rng, stall_prob=0.45).stalled for _ in range(4000))
    assert abs(stalls / 4000 - 0.45) < 0.03


def test_plan_rollout_and_probability() -> None:
    ro = env.rollout_plan(7, 23, ("*3", "+2", "+1"))
    assert ro.states == (21, 23) and ro.reaches and ro.ops == ("*3", "+2")
    assert env.plan_success_prob(2, 2, True) == pytest.approx(0.85**2)
    assert env.plan_success_prob(1, 2, True) == pytest.approx(1 - 0.15**2)
    assert env.plan_success_prob(3, 2, True) == 0.0
    assert env.plan_success_prob(1, 6, False) == 0.0


def _brute_force(x: int, t: int, n: int) -> float:
    """Optimal value by explicit expectimax over every action and stall pattern."""
    if x == t:
        return 1.0
    if n == 0 or not env.in_bounds(x):
        return 0.0
    best = 0.0
    for op in OPS:
        nx = env.apply_op(x, op)
        moved = _brute_force(nx, t, n - 1) if env.in_bounds(nx) else 0.0
        best = max(best, 0.15 * _brute_force(x, t, n - 1) + 0.85 * moved)
    return best


@pytest.mark.parametrize(("x", "t", "n"), [(2, 20, 3), (5, 17, 3), (3, 30, 4), (15, 44, 3), (9, 25, 4)])
def test_optimum_matches_brute_force(x: int, t: int, n: int) -> None:
    assert env.optimal_value(x, t, n) == pytest.approx(_brute_force(x, t, n))


def test_shortest_plans_are_shortest() -> None:
    plans = env.shortest_plans(5, 31, 6)
    assert plans
    length = len(plans[0])
    for k in range(1, length):
        for ops in itertools.product(OPS, repeat=k):
            assert not env.rollout_plan(5, 31, ops).reaches
    assert all(env.rollout_plan(5, 31, p).reaches for p in plans)


def test_policy_success_rates_match_the_design() -> None:
    starts = [State(x, t, env.HORIZON) for x in env.START_X for t in env.TARGETS]
    reactive = sum(env.reactive_value(s.x, s.t, s.n) for s in starts) / len(starts)
    optimal = sum(env.optimal_value(s.x, s.t, s.n) for s in starts) / len(starts)
    assert 0.38 < reactive < 0.46
    assert 0.90 < optimal < 0.96


def test_one_step_value_is_the_planner_played_out() -> None:
    # hand-worked: one step left, +1 hits unless it stalls; far from the target nothing can hit
    assert env.one_step_value(30, 31, 1) == pytest.approx(0.85)
    assert env.one_step_q(30, 31, 1, "+2") == 0.0
    assert env.one_step_value(5, 90, 1) == 0.0
    # against the one-step planner simulated step by step
    rng = random.Random(3)
    for x, t in [(7, 52), (3, 41), (14, 77)]:
        wins = 0
        for _ in range(4000):
            s = State(x, t, env.HORIZON)
            while not s.done:
                s = env.step(s, env.one_step_op(s.x, s.t, s.n), rng).state
            wins += s.success
        assert wins / 4000 == pytest.approx(env.one_step_value(x, t, env.HORIZON), abs=0.03)


def test_one_step_advantages_along_a_policy_estimate_its_success() -> None:
    # performance difference: V_one_step(start) + the sum of one_step_q(s, a) - one_step_value(s) along
    # the reactive heuristic's own episodes estimates the reactive heuristic's exact success
    rng = random.Random(4)
    x, t = 6, 47
    estimates = []
    for _ in range(3000):
        s, gain = State(x, t, env.HORIZON), 0.0
        while not s.done:
            op = env.reactive_op(s.x, s.t)
            gain += env.one_step_q(s.x, s.t, s.n, op) - env.one_step_value(s.x, s.t, s.n)
            s = env.step(s, op, rng).state
        estimates.append(env.one_step_value(x, t, env.HORIZON) + gain)
    reactive = env.reactive_value(x, t, env.HORIZON)
    assert env.one_step_value(x, t, env.HORIZON) - reactive > 0.2  # a case where they differ
    assert sum(estimates) / len(estimates) == pytest.approx(reactive, abs=0.02)


def test_split_is_disjoint_and_seeded() -> None:
    held = env.start_states(heldout=True)
    train = env.start_states(heldout=False)
    assert held and train
    assert not {(s.x, s.t) for s in held} & {(s.x, s.t) for s in train}
    assert env.heldout_pairs() == env.heldout_pairs()


def test_simulate_plan_in_a_world_with_another_stall_rate() -> None:
    state = env.State(7, 21, 2)
    assert all(env.simulate_plan(state, ("*3",), random.Random(i), stall_prob=0.0) for i in range(50))
    assert not any(env.simulate_plan(state, ("*3",), random.Random(i), stall_prob=1.0) for i in range(50))
    rate = sum(env.simulate_plan(state, ("*3",), random.Random(i), stall_prob=0.5) for i in range(2000)) / 2000
    assert abs(rate - 0.75) < 0.04  # P(not stalled twice)


@pytest.mark.parametrize(("x", "t", "n"), [(5, 31, 6), (7, 23, 6), (2, 99, 6), (15, 20, 2), (3, 97, 3)])
def test_shortest_hit_length_against_brute_force(x: int, t: int, n: int) -> None:
    brute = next((k for k in range(1, n + 1) for ops in itertools.product(OPS, repeat=k)
                  if env.rollout_plan(x, t, ops).reaches), None)
    assert env.shortest_hit_length(x, t, n) == brute
    plans = env.shortest_plans(x, t, n)
    assert all(env.is_shortest_hit(x, t, n, p) for p in plans)
    if brute is not None and brute < n:  # a longer plan that hits is not a shortest hit
        longer = next(ops for k in range(brute + 1, n + 1) for ops in itertools.product(OPS, repeat=k)
                      if env.rollout_plan(x, t, ops).reaches and len(env.rollout_plan(x, t, ops).ops) == k)
        assert not env.is_shortest_hit(x, t, n, longer)
