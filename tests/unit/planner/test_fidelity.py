"""World-model fidelity (rollout vs observation) and the constant-confidence Platt case."""

from __future__ import annotations

import pytest

from planner.calibrate import fit_platt
from planner.fidelity import normalize, rollout_fidelity, words


def test_identical_text_scores_one_and_tags_case_space_are_ignored() -> None:
    assert rollout_fidelity("<imaginary>X=21  target=52</imaginary>", "x=21 target=52") == 1.0
    assert normalize("<information>A\n B</information>") == "a b"
    assert words("<information>x=21; Zin rival Kog #37.</information>") == ["x", "21", "zin", "rival", "kog", "#37"]


def test_closer_observation_scores_higher() -> None:
    rollout = "x=21 target=52 steps=5"
    near = rollout_fidelity(rollout, "x=21 target=52 steps=4")
    far = rollout_fidelity(rollout, "the door was locked")
    assert near == pytest.approx(5 / 6) and far == 0.0


def test_an_observation_anywhere_in_a_long_rollout_scores_one() -> None:
    """A search's rollout imagines several results; the one that came back was foreseen (1), a changed
    passage partly (same subject and relation, another value and document), an unforeseen one hardly."""
    rollout = ("<imaginary>Ber mentor Zin #12. Zin rival Kog #37 search Kog rival: 1 Kog rival Dad #80; "
               "2 Zin rival Kog #37</imaginary>")
    assert rollout_fidelity(rollout, "<information>Zin rival Kog #37</information>") == 1.0
    assert rollout_fidelity(rollout, "Zin rival Mok #131") == 0.5
    assert rollout_fidelity(rollout, "Tas partner Lol #5") == 0.0
    assert rollout_fidelity(rollout, "Zin rival Kog #37 Ber") == 0.8  # in order: Ber came before
    # an episode's step counter is no part of the world: a report that carries it scores its digit against
    # the list's rank numbers (why apps and bench/drift.py report the returned document alone)
    assert rollout_fidelity(rollout, "Zin rival Kog #37 steps=2") == pytest.approx(5 / 6)


@pytest.mark.parametrize(("rollout", "observation"), [(None, "x"), ("x", None), ("", "x"), ("<a></a>", "x")])
def test_missing_text_has_no_score(rollout: str | None, observation: str | None) -> None:
    assert rollout_fidelity(rollout, observation) is None


def test_platt_on_one_repeated_confidence_moves_it_to_the_success_rate() -> None:
    m = fit_platt([0.9] * 60, [i % 3 == 0 for i in range(60)])
    assert m(0.9) == pytest.approx((20 * 21 / 22 + 40 / 42) / 60, abs=1e-9)  # Platt's smoothed rate (1/3 raw)
    assert m(0.5) < m(0.9) < m(0.99)  # slope kept: still monotone
