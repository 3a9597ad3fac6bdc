"""Calibration metrics: Brier score, ECE (equal-width bins), reliability bins. Pure Python."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ECE_BINS = 15


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability diagram."""

    lower: float
    upper: float
    count: int
    mean_confidence: float
    accuracy: float


def brier_score(confidences: Sequence[float], outcomes: Sequence[bool]) -> float:
    if len(confidences) != len(outcomes):
        raise ValueError("confidences and outcomes differ in length")
    if not confidences:
        return 0.0
    return sum((c - float(y)) ** 2 for c, y in zip(confidences, outcomes, strict=True)) / len(confidences)


def reliability_bins(
    confidences: Sequence[float], outcomes: Sequence[float], bins: int = ECE_BINS
) -> list[ReliabilityBin]:
    """Equal-width bins over [0, 1]; the last bin includes 1.0. ``outcomes``: 0/1, or exact chances (then
    each bin's accuracy is its mean chance)."""
    if len(confidences) != len(outcomes):
        raise ValueError("confidences and outcomes differ in length")
    sums = [[0, 0.0, 0.0] for _ in range(bins)]
    for c, y in zip(confidences, outcomes, strict=True):
        i = min(int(c * bins), bins - 1)
        sums[i][0] += 1
        sums[i][1] += c
        sums[i][2] += float(y)
    return [
        ReliabilityBin(i / bins, (i + 1) / bins, int(n), (sc / n) if n else 0.0, (sy / n) if n else 0.0)
        for i, (n, sc, sy) in enumerate(sums)
    ]


def expected_calibration_error(confidences: Sequence[float], outcomes: Sequence[float], bins: int = ECE_BINS) -> float:
    """ECE: the count-weighted gap between confidence and accuracy per bin."""
    total = len(confidences)
    if total == 0:
        return 0.0
    return sum(b.count / total * abs(b.accuracy - b.mean_confidence)
               for b in reliability_bins(confidences, outcomes, bins) if b.count)
