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


def test_platt_matches_sklearn_logistic_regression() -> None:
    from sklearn.linear_model import LogisticRegression

    raw, out = overconfident(2000, 1)
    m = fit_platt(raw, out)
    x = [[math.log(min(1 - 1e-4, max(1e-4, r)) / (1 - min(1 - 1e-4, max(1e-4, r))))] for r in raw]
    ref = LogisticRegression(C=1e6, max_iter=1000).fit(x, out)
    assert m.a == pytest.approx(ref.coef_[0][0], rel=1e-3)
    assert m.b == pytest.approx(ref.intercept_[0], rel=1e-3, abs=1e-3)


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
