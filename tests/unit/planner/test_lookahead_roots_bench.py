"""bench/lookahead_roots.py compares lookahead with and without root widening: the two configurations
must differ in nothing else, and the budget must pay for every round of roots."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

from reference.planning import PLANNERS

REPO = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("lookahead_roots", REPO / "bench" / "lookahead_roots.py")
assert _spec and _spec.loader
bench = importlib.util.module_from_spec(_spec)
sys.modules["lookahead_roots"] = bench
_spec.loader.exec_module(bench)


@pytest.mark.parametrize("rounds", [1, 2, 4])
def test_the_two_configurations_differ_only_in_root_widening(rounds: int) -> None:
    one, wide = bench.configs(rounds, 0.35)
    base = PLANNERS["lookahead"]
    assert one.root_rounds == 1 and wide.root_rounds == rounds and wide.commit_threshold == 0.35
    # one round: the roots and the expanded branches; each further round: one more width of roots
    expanded = base.branch * base.width
    assert one.budget.max_candidates == base.width + expanded
    assert wide.budget.max_candidates == rounds * base.width + expanded
    same = {f.name for f in dataclasses.fields(base)} - {"root_rounds", "commit_threshold", "budget"}
    assert all(getattr(one, f) == getattr(base, f) == getattr(wide, f) for f in same)
    assert dataclasses.replace(one.budget, max_candidates=1) == dataclasses.replace(wide.budget, max_candidates=1)


def test_report_without_decisions_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    bench.report([], 4)
    assert "nothing to compare" in capsys.readouterr().out
