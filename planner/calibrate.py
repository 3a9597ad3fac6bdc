"""Calibration maps from raw verbalized confidence to probability (DESIGN §4). Pure Python.

Identity below ``min_platt`` outcomes, Platt scaling (logistic regression on the
logit of the raw confidence) up to ``min_isotonic``, isotonic regression (pool
adjacent violators) beyond. Every map serializes to a plain dict so the server
can persist it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

EPS = 1e-4


def _logit(p: float) -> float:
    p = min(1 - EPS, max(EPS, p))
    return math.log(p / (1 - p))


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


class CalibrationMap(Protocol):
    """A fitted raw → calibrated map."""

    @property
    def kind(self) -> str: ...

    def __call__(self, raw: float) -> float: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class IdentityMap:
    """No calibration: too few outcomes to trust a fit."""

    kind: str = "identity"

    def __call__(self, raw: float) -> float:
        return min(1.0, max(0.0, raw))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}


@dataclass(frozen=True)
class PlattMap:
    """sigmoid(a · logit(raw) + b)."""

    a: float
    b: float
    kind: str = "platt"

    def __call__(self, raw: float) -> float:
        return _sigmoid(self.a * _logit(raw) + self.b)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "a": self.a, "b": self.b}


@dataclass(frozen=True)
class IsotonicMap:
    """Non-decreasing: flat over each fitted block, linear between blocks (as scikit-learn predicts)."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]
    kind: str = "isotonic"

    def __call__(self, raw: float) -> float:
        if not self.xs:
            return raw
        if raw <= self.xs[0]:
            return self.ys[0]
        if raw >= self.xs[-1]:
            return self.ys[-1]
        i = bisect.bisect_right(self.xs, raw)
        x0, x1, y0, y1 = self.xs[i - 1], self.xs[i], self.ys[i - 1], self.ys[i]
        return y0 if x1 == x0 else y0 + (y1 - y0) * (raw - x0) / (x1 - x0)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "xs": list(self.xs), "ys": list(self.ys)}


def _platt_nll(xs: Sequence[float], ys: Sequence[float], a: float, b: float) -> float:
    total = 0.0
    for x, y in zip(xs, ys, strict=True):
        z = a * x + b
        # log(1 + e^z) - y z, computed stably
        total += (z if z > 0 else 0.0) + math.log1p(math.exp(-abs(z))) - y * z
    return total


def platt_targets(outcomes: Sequence[bool]) -> list[float]:
    """Platt's smoothed targets: a success counts as (N₊+1)/(N₊+2), a failure as 1/(N₋+2) — a prior that
    keeps a fit finite when the outcomes hold one class (40 failures: 1/42, not 0)."""
    pos = sum(1 for o in outcomes if o)
    neg = len(outcomes) - pos
    hit, miss = (pos + 1) / (pos + 2), 1 / (neg + 2)
    return [hit if o else miss for o in outcomes]


def fit_platt(raw: Sequence[float], outcomes: Sequence[bool], iterations: int = 50) -> PlattMap:
    """Logistic fit on logit(raw) to Platt's smoothed targets (:func:`platt_targets`, as scikit-learn's
    sigmoid calibration) by damped Newton's method (tiny ridge for stability); so one-class outcomes
    (all failures, all successes) are fitted too — with the slope kept at 1 (their best slope is 0: a flat
    map that would rank every plan alike, or by rounding error), the intercept moving the mean to the
    smoothed rate.

    When every raw confidence is the same, the slope is not identifiable: the slope stays 1 and
    the intercept moves the one value to the mean target (the success rate, smoothed)."""
    xs = [_logit(r) for r in raw]
    ys = platt_targets(outcomes)
    if not xs:
        return PlattMap(1.0, 0.0)
    if max(xs) - min(xs) < 1e-9:
        rate = min(max(sum(ys) / len(ys), EPS), 1 - EPS)
        return PlattMap(1.0, _logit(rate) - xs[0])
    if len(set(outcomes)) < 2:  # one class: the slope's best fit is 0 (a flat map that loses the order)
        return PlattMap(1.0, _fit_intercept(xs, ys))
    a, b, ridge = 1.0, 0.0, 1e-6
    loss = _platt_nll(xs, ys, a, b)
    for _ in range(iterations):
        ga = gb = haa = hab = hbb = 0.0
        for x, y in zip(xs, ys, strict=True):
            p = _sigmoid(a * x + b)
            w = p * (1 - p)
            ga += (p - y) * x
            gb += p - y
            haa += w * x * x
            hab += w * x
            hbb += w
        haa += ridge
        hbb += ridge
        det = haa * hbb - hab * hab
        if abs(det) < 1e-12:
            break
        da = (hbb * ga - hab * gb) / det
        db = (haa * gb - hab * ga) / det
        step = 1.0
        while step > 1e-6:  # halve the step until the likelihood does not get worse
            new_loss = _platt_nll(xs, ys, a - step * da, b - step * db)
            if new_loss <= loss + 1e-12:
                break
            step /= 2
        else:
            break
        a, b, loss = a - step * da, b - step * db, new_loss
        if abs(step * da) < 1e-10 and abs(step * db) < 1e-10:
            break
    return PlattMap(a, b)


def _fit_intercept(xs: Sequence[float], ys: Sequence[float], iterations: int = 100) -> float:
    """b of sigmoid(x + b) fitted to ``ys`` (slope kept at 1): a shift that keeps the map increasing, so a
    one-class domain still ranks plans by what the model said (Newton's method on the mean target)."""
    target = sum(ys) / len(ys)
    b = _logit(target) - sum(xs) / len(xs)
    for _ in range(iterations):
        ps = [_sigmoid(x + b) for x in xs]
        grad = sum(ps) / len(ps) - target
        hess = sum(p * (1 - p) for p in ps) / len(ps)
        if hess < 1e-15 or abs(grad) < 1e-12:
            break
        b -= grad / hess
    return b


def fit_isotonic(raw: Sequence[float], outcomes: Sequence[bool]) -> IsotonicMap:
    """Pool adjacent violators on (raw, outcome) sorted by raw; equal raw values are pooled first."""
    pairs = sorted(zip(raw, (1.0 if o else 0.0 for o in outcomes), strict=True))
    blocks: list[list[float]] = []  # [min_x, max_x, sum_y, count]
    for x, y in pairs:
        if blocks and blocks[-1][1] == x:
            blocks[-1][2] += y
            blocks[-1][3] += 1
        else:
            blocks.append([x, x, y, 1.0])
        while len(blocks) > 1 and blocks[-2][2] / blocks[-2][3] >= blocks[-1][2] / blocks[-1][3]:
            _lo, hi, sy, n = blocks.pop()
            blocks[-1][1] = hi
            blocks[-1][2] += sy
            blocks[-1][3] += n
    xs: list[float] = []
    ys: list[float] = []
    for lo, hi, sy, n in blocks:
        for x in (lo, hi) if hi > lo else (lo,):
            xs.append(x)
            ys.append(sy / n)
    return IsotonicMap(tuple(xs), tuple(ys))


def map_from_dict(data: Mapping[str, Any]) -> CalibrationMap:
    kind = data.get("kind")
    if kind == "platt":
        return PlattMap(float(data["a"]), float(data["b"]))
    if kind == "isotonic":
        return IsotonicMap(tuple(map(float, data["xs"])), tuple(map(float, data["ys"])))
    return IdentityMap()


@dataclass(frozen=True)
class CalibrationPolicy:
    """When to move from identity to Platt to isotonic."""

    min_platt: int = 30
    min_isotonic: int = 300


def fit_map(raw: Sequence[float], outcomes: Sequence[bool], policy: CalibrationPolicy | None = None) -> CalibrationMap:
    """Identity below ``min_platt`` outcomes (too few to trust any fit), Platt up to ``min_isotonic``,
    isotonic beyond — except for one-class outcomes, which stay with Platt at any count: isotonic
    regression would map every confidence to exactly 0 (or 1), a certainty no finite sample shows;
    Platt's smoothed targets keep it at 1/(N₋+2) (or (N₊+1)/(N₊+2))."""
    policy = policy or CalibrationPolicy()
    n = len(raw)
    if n < policy.min_platt:
        return IdentityMap()
    if n < policy.min_isotonic or len(set(outcomes)) < 2:
        return fit_platt(raw, outcomes)
    return fit_isotonic(raw, outcomes)


@dataclass
class DomainCalibrator:
    """The planner's ``Calibrator``: one map per domain (identity for unknown domains)."""

    maps: dict[str, CalibrationMap] = field(default_factory=dict)

    def calibrate(self, raw: float | None, domain: str) -> float | None:
        if raw is None:
            return None
        return self.maps.get(domain, IdentityMap())(raw)
