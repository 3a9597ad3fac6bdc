"""Calibration maps against scikit-learn's reference implementations, on synthetic data."""

from __future__ import annotations

import itertools
import math
import random

import pytest
import sklearn  # noqa: F401  (a test dependency: the reference implementations)

from planner.calibrate import (
    CalibrationPolicy,
    DomainCalibrator,
    IdentityMap,
    IsotonicMap,
    PlattMap,
    fit_isotonic,
    fit_map,
    fit_platt,
    map_from_dict,
)
from planner.calibration_math import brier_score, expected_calibration_error


def overconfident(n: int, seed: int) -> tuple[list[float], list[bool]]:
    """True probability p; the model says p**0.3 (over-confident)."""
    rng = random.Random(seed)
    raw, out = [], []
    for _ in range(n):
        p = rng.random()
        raw.append(min(0.999, p**0.3))
        out.append(rng.random() < p)
    return raw, out


def _logits(raw: list[float]) -> list[float]:
    return [math.log(min(1 - 1e-4, max(1e-4, r)) / (1 - min(1 - 1e-4, max(1e-4, r)))) for r in raw]


def _sklearn_platt(raw: list[float], out: list[bool]) -> tuple[float, float]:
    """scikit-learn's sigmoid calibration (Platt's method, smoothed targets) on logit(raw): our (a, b)."""
    import numpy as np
    from sklearn.calibration import _sigmoid_calibration

    a, b = _sigmoid_calibration(np.array(_logits(raw)), np.array(out, dtype=float))
    return -float(a), -float(b)  # scikit-learn's p = 1 / (1 + exp(A f + B))


def test_platt_matches_sklearn_sigmoid_calibration() -> None:
    raw, out = overconfident(2000, 1)
    m = fit_platt(raw, out)
    a, b = _sklearn_platt(raw, out)
    assert m.a == pytest.approx(a, rel=2e-3)
    assert m.b == pytest.approx(b, rel=2e-3, abs=2e-3)


@pytest.mark.parametrize("success", [False, True])
def test_one_class_outcomes_are_fitted_as_platt_does(success: bool) -> None:
    """A model confidently wrong every time is the case calibration exists for: 40 failures at 0.99 (a
    spread of 0.97-0.995, or all at exactly 0.99) bring the calibrated confidence near the observed rate."""
    rng = random.Random(7)
    spread = [0.97 + 0.025 * rng.random() for _ in range(40)]
    for raw in (spread, [0.99] * 40):
        out = [success] * 40
        m = fit_map(raw, out, CalibrationPolicy(min_platt=30, min_isotonic=300))
        assert isinstance(m, PlattMap)
        observed = 41 / 42 if success else 1 / 42  # Platt's smoothed rate
        assert m(0.99) == pytest.approx(observed, abs=0.02)
        assert sum(m(r) for r in raw) / len(raw) == pytest.approx(observed, abs=1e-6)  # the mean is the rate
        probes = [0.3, 0.6, 0.9, 0.97, 0.99]
        assert all(a < b for a, b in itertools.pairwise(m(p) for p in probes))  # still ranks plans in order
    few = fit_map([0.99] * 10, [False] * 10, CalibrationPolicy(min_platt=30))
    assert isinstance(few, IdentityMap)  # below min_platt: no fit at all
    many = fit_map([0.99] * 400, [False] * 400, CalibrationPolicy(min_platt=30, min_isotonic=300))
    assert isinstance(many, PlattMap) and 0 < many(0.99) < 0.01  # isotonic would say exactly 0
    easy = fit_map([0.3 + 0.69 * i / 399 for i in range(400)], [True] * 400, CalibrationPolicy(min_platt=30))
    assert easy(0.3) < easy(0.6) < easy(0.99) < 1  # all successes: near 1, in the model's order


def test_isotonic_matches_sklearn() -> None:
    from sklearn.isotonic import IsotonicRegression

    raw, out = overconfident(1500, 2)
    m = fit_isotonic(raw, out)
    ref = IsotonicRegression(out_of_bounds="clip").fit(raw, out)
    probes = [i / 100 for i in range(1, 100)]
    ours = [m(p) for p in probes]
    theirs = ref.predict(probes)
    assert ours == pytest.approx(list(theirs), abs=1e-9)
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(ours))


@pytest.mark.parametrize("fit", [fit_platt, fit_isotonic])
def test_calibration_lowers_ece_and_brier_on_held_out_data(fit: object) -> None:
    raw, out = overconfident(3000, 3)
    test_raw, test_out = overconfident(3000, 4)
    m = fit(raw, out)  # type: ignore[operator]
    cal = [m(r) for r in test_raw]
    assert expected_calibration_error(cal, test_out) < expected_calibration_error(test_raw, test_out) / 2
    assert brier_score(cal, test_out) < brier_score(test_raw, test_out)


def test_ece_and_brier_match_sklearn() -> None:
    from sklearn.metrics import brier_score_loss

    raw, out = overconfident(500, 5)
    assert brier_score(raw, out) == pytest.approx(brier_score_loss(out, raw))
    # ECE by hand on a tiny case: bins of width 1/15
    assert expected_calibration_error([0.9, 0.9], [True, False]) == pytest.approx(0.4)


def test_policy_thresholds_and_serialization() -> None:
    raw, out = overconfident(400, 6)
    policy = CalibrationPolicy(min_platt=30, min_isotonic=300)
    assert isinstance(fit_map(raw[:10], out[:10], policy), IdentityMap)
    assert isinstance(fit_map(raw[:100], out[:100], policy), PlattMap)
    iso = fit_map(raw, out, policy)
    assert isinstance(iso, IsotonicMap)
    for m in (IdentityMap(), fit_platt(raw, out), iso):
        back = map_from_dict(m.to_dict())
        assert [back(p / 10) for p in range(11)] == pytest.approx([m(p / 10) for p in range(11)])


def test_domain_calibrator_is_identity_for_unknown_domains() -> None:
    c = DomainCalibrator({"search": PlattMap(0.5, 0.0)})
    assert c.calibrate(0.9, "other") == 0.9
    assert c.calibrate(None, "search") is None
    assert c.calibrate(0.9, "search") == pytest.approx(1 / (1 + math.exp(-0.5 * math.log(9))))
