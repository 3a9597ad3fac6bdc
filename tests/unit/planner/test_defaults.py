"""A model's planner.json: layered over the measured defaults; a bad one is an error naming the file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.defaults import MEASURED, InvalidPlannerDefaults, PlannerDefaults, load, parse
from planner.params import from_mapping
from planner.search import Algorithm, PlanConfig


def test_every_measured_default_is_a_configuration_the_planner_takes() -> None:
    assert set(MEASURED) == set(Algorithm)
    for algorithm, knobs in MEASURED.items():
        assert from_mapping(PlanConfig, {"algorithm": algorithm.value, **knobs}).algorithm is algorithm


def test_no_file_is_the_measured_defaults(tmp_path: Path) -> None:
    d = load(tmp_path)
    assert d == PlannerDefaults() and d.source is None
    assert d.knobs(Algorithm.BRANCH_COMMIT) == MEASURED[Algorithm.BRANCH_COMMIT]


def test_fill_keeps_what_was_given_and_layers_the_budget(tmp_path: Path) -> None:
    (tmp_path / "planner.json").write_text(json.dumps({"branch_commit": {"budget": {"max_candidates": 8}}}))
    d = load(tmp_path)
    data = {"algorithm": "branch_commit", "width": 4, "commit_threshold": 0.8,
            "budget": {"max_candidates": 16, "max_tokens": 999}}
    out = d.fill(data, given={"width"}, budget_given={"max_tokens"})
    assert out["width"] == 4 and out["commit_threshold"] == 0.5  # given kept; measured default taken
    assert out["budget"] == {"max_candidates": 8, "max_tokens": 999}  # the model's cap; the given budget kept


@pytest.mark.parametrize(("raw", "says"), [
    ([1], "must be a JSON object"),
    ({"algorithm": "mcts"}, "algorithm must be one of"),
    ({"branchcommit": {}}, "'branchcommit' is neither"),
    ({"best_of_n": {"width": 2.5}}, "best_of_n.width must be a whole number"),
    ({"best_of_n": {"width": True}}, "best_of_n.width must be a whole number"),
    ({"best_of_n": {"temperature": 3}}, "temperature: must be in [0, 2]"),
    ({"best_of_n": {"seed": 1}}, "'seed' is not a plan parameter a model may default"),
    ({"lookahead": {"budget": {"max_depth": "2"}}}, "lookahead.budget.max_depth must be a whole number"),
    ({"lookahead": {"budget": {"depth": 2}}}, "budget must be an object of"),
    ({"lookahead": []}, "must be an object of plan parameters"),
])
def test_a_bad_file_names_the_file_and_the_field(tmp_path: Path, raw: object, says: str) -> None:
    (tmp_path / "planner.json").write_text(json.dumps(raw))
    with pytest.raises(InvalidPlannerDefaults) as exc:
        load(tmp_path)
    assert str(tmp_path / "planner.json") in str(exc.value) and says in str(exc.value)


def test_unreadable_json_is_named(tmp_path: Path) -> None:
    (tmp_path / "planner.json").write_text("{not json")
    with pytest.raises(InvalidPlannerDefaults, match="not readable JSON"):
        load(tmp_path)
    assert parse({}, "x").algorithm is Algorithm.BRANCH_COMMIT
