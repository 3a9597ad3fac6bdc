"""A plan's defaults: per algorithm, measured, and a model's own (``planner.json`` beside its config).

A knob the request leaves out takes, in order: the model's own default for the algorithm (its
``planner.json``), else the algorithm's measured default (:data:`MEASURED`), else the knob's own
(:mod:`planner.params`). The algorithm itself, when left out, is the model's ``algorithm`` or
``branch_commit``.

:data:`MEASURED` holds, for each algorithm, the cheapest configuration (generated tokens per decision)
whose success was within one paired standard error of best-of-8 on both reference worlds, found by
``bench/commit_rules.py``'s replay (docs/planning.md, "Where the defaults come from").

``planner.json``::

    {"algorithm": "branch_commit",
     "branch_commit": {"commit_threshold": 0.6, "budget": {"max_candidates": 8}},
     "self_consistency": {"width": 2}}

Pure Python: nothing of torch, vllm or the server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.errors import PlannerError
from planner.params import Param, from_mapping, params
from planner.search.base import Algorithm, Budget, PlanConfig

FILE = "planner.json"

MEASURED: Mapping[Algorithm, Mapping[str, Any]] = {
    Algorithm.GREEDY: {},
    # N = 4 lost +0.0057 +- 0.0031 a decision against best-of-8 on NumberReach (400 states): not within one SE
    Algorithm.BEST_OF_N: {"width": 8},
    # one span, then 2, 4, 8 (15 at most); commit at the first plan claiming 0.5: +0.0021 +- 0.0024 against
    # best-of-8 at 38% of its tokens on NumberReach, +0.0000 at 42% on the search world (300 states)
    Algorithm.BRANCH_COMMIT: {"width": 1, "width_growth": 2, "commit_threshold": 0.5,
                              "budget": {"max_candidates": 15}},
    Algorithm.LOOKAHEAD: {},
    # 8 turns in one round, the confidence-weighted vote: +0.0015 +- 0.0019 against best-of-8 on NumberReach;
    # every rule that stops earlier lost more than one SE there (two agreeing turns that claim little
    # commit too soon), though all were as good on the search world. A count vote over 8, the peers'
    # rule, lost +0.0277 +- 0.0069.
    Algorithm.SELF_CONSISTENCY: {"width": 8, "width_growth": 1, "commit_threshold": 0.0,
                                 "budget": {"max_candidates": 8}},
}


class InvalidPlannerDefaults(PlannerError, ValueError):
    """A model's ``planner.json`` is not valid; the message names the file and what is wrong."""


@dataclass(frozen=True)
class PlannerDefaults:
    """The defaults a model plans with: its default algorithm and its knobs per algorithm."""

    algorithm: Algorithm = Algorithm.BRANCH_COMMIT
    own: Mapping[Algorithm, Mapping[str, Any]] = field(default_factory=dict)  # from the model's file
    source: str | None = None  # the file they came from (None: none)

    def knobs(self, algorithm: Algorithm) -> dict[str, Any]:
        """The defaults of ``algorithm``: measured, under the model's own."""
        return _merge(MEASURED.get(algorithm, {}), self.own.get(algorithm, {}))

    def as_json(self) -> dict[str, Any]:
        """What ``/v1/models`` shows: the default algorithm, every algorithm's defaults, the file."""
        return {"algorithm": self.algorithm.value, "source": self.source,
                "algorithms": {a.value: self.knobs(a) for a in Algorithm}}

    def fill(self, data: Mapping[str, Any], given: set[str], budget_given: set[str]) -> dict[str, Any]:
        """``data`` (a request's knobs, its defaults included) with every knob not in ``given`` (and budget
        knob not in ``budget_given``) replaced by this model's default for the request's algorithm."""
        out = dict(data)
        if "algorithm" not in given:
            out["algorithm"] = self.algorithm.value
        defaults = self.knobs(Algorithm(out["algorithm"]))
        for name, value in defaults.items():
            if name == "budget":
                budget = dict(out.get("budget") or {})
                budget.update({k: v for k, v in value.items() if k not in budget_given})
                out["budget"] = budget
            elif name not in given:
                out[name] = value
        return out


def _merge(low: Mapping[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(low)
    for k, v in high.items():
        out[k] = {**low.get(k, {}), **v} if k == "budget" else v
    return out


_KNOBS = {p.name: p for p in params(PlanConfig) if p.name not in ("algorithm", "seed")}
_BUDGET = {p.name: p for p in params(Budget)}


def _typed(p: Param, value: object, where: str) -> None:
    """A value of the knob's type (a whole number where one is asked, a number, one of an enum's values)."""
    base = p.base
    if p.choices is not None:
        ok = value in p.choices
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, base)
    if not ok:
        want = f"one of {p.choices}" if p.choices else {int: "a whole number", float: "a number"}.get(base, "a string")
        raise InvalidPlannerDefaults(f"{where}.{p.name} must be {want}, got {value!r}")


def parse(raw: object, source: str) -> PlannerDefaults:
    """A model's defaults from its file's JSON; :class:`InvalidPlannerDefaults` naming what is wrong."""
    if not isinstance(raw, dict):
        raise InvalidPlannerDefaults(f"{source}: must be a JSON object")
    choices = [a.value for a in Algorithm]
    algorithm = raw.get("algorithm", Algorithm.BRANCH_COMMIT.value)
    if algorithm not in choices:
        raise InvalidPlannerDefaults(f"{source}: algorithm must be one of {choices}, got {algorithm!r}")
    own: dict[Algorithm, dict[str, Any]] = {}
    for key, knobs in raw.items():
        if key == "algorithm":
            continue
        if key not in choices:
            raise InvalidPlannerDefaults(f"{source}: {key!r} is neither 'algorithm' nor one of {choices}")
        algo = Algorithm(key)
        own[algo] = _knobs(knobs, f"{source}: {key}")
        try:  # the whole configuration must be one the planner takes
            from_mapping(PlanConfig, {"algorithm": key, **_merge(MEASURED.get(algo, {}), own[algo])})
        except (ValueError, TypeError) as exc:
            raise InvalidPlannerDefaults(f"{source}: {key}.{exc}") from None
    return PlannerDefaults(Algorithm(algorithm), own, source)


def _knobs(knobs: object, where: str) -> dict[str, Any]:
    if not isinstance(knobs, dict):
        raise InvalidPlannerDefaults(f"{where} must be an object of plan parameters")
    for name, value in knobs.items():
        if name == "budget":
            if not isinstance(value, dict) or not set(value) <= set(_BUDGET):
                raise InvalidPlannerDefaults(f"{where}.budget must be an object of {sorted(_BUDGET)}")
            for k, v in value.items():
                _typed(_BUDGET[k], v, f"{where}.budget")
        elif name not in _KNOBS:
            raise InvalidPlannerDefaults(f"{where}: {name!r} is not a plan parameter a model may default "
                                         f"({', '.join(sorted(_KNOBS))})")
        else:
            _typed(_KNOBS[name], value, where)
    return dict(knobs)


def load(directory: str | Path) -> PlannerDefaults:
    """The defaults of the model in ``directory`` (its ``planner.json``; none: the measured ones)."""
    path = Path(directory) / FILE
    if not path.is_file():
        return PlannerDefaults()
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidPlannerDefaults(f"{path}: not readable JSON ({exc})") from None
    return parse(raw, str(path))
