"""docs/planning.md's parameter table is rendered from the one plan schema (planner.params via
protocol.plan), and its table of each algorithm's measured defaults from ``planner.defaults.MEASURED``, so
neither can drift. After changing a knob or a default: ``.venv/bin/python tests/unit/test_plan_docs.py``."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, MaxLen, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from planner.defaults import MEASURED
from planner.params import params
from planner.search import Budget, PlanConfig
from protocol.plan import BudgetModel, PlanRequest

DOC = Path(__file__).resolve().parents[2] / "docs" / "planning.md"
START, END = "<!-- plan-params:start -->", "<!-- plan-params:end -->"
DSTART, DEND = "<!-- plan-defaults:start -->", "<!-- plan-defaults:end -->"
LIMITS = {p.name: p.knob.limit for cls in (PlanConfig, Budget) for p in params(cls) if p.knob.limit}


def _bounds(info: FieldInfo) -> str:
    parts = []
    for m in info.metadata:
        if isinstance(m, Ge):
            parts.append(f"≥ {m.ge:g}" if abs(float(m.ge)) < 1e12 else "64-bit signed")
        elif isinstance(m, Gt):
            parts.append(f"> {m.gt:g}")
        elif isinstance(m, Le) and abs(float(m.le)) < 1e12:
            parts.append(f"≤ {m.le:g}")
        elif isinstance(m, MinLen):
            parts.append(f"at least {m.min_length} long")
        elif isinstance(m, MaxLen):
            parts.append(f"at most {m.max_length} long")
    choices = getattr(info.annotation, "__members__", None)
    if choices:
        parts.append(", ".join(f"`{v.value}`" for v in choices.values()))
    return ", ".join(parts) or "—"


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        return "see below"
    value: Any = getattr(info.default, "value", info.default)
    return "—" if value is None else f"`{str(value).lower() if isinstance(value, bool) else value}`"


def _rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    rows = []
    for name, info in model.model_fields.items():
        if name == "budget":
            rows += _rows(BudgetModel, "budget.")
            continue
        limit = LIMITS.get(name)
        rows.append(f"| `{prefix}{name}` | {_default(info)} | {_bounds(info)} | "
                    f"{f'`{limit}`' if limit else '—'} | {info.description or ''} |")
    return rows


def rendered() -> str:
    head = ["| parameter | default | bounds | server limit (setting) | what it does |", "|---|---|---|---|---|"]
    return "\n".join([START, *head, *_rows(PlanRequest), END])


def rendered_defaults() -> str:
    """Each algorithm's measured defaults (what a request that leaves a knob out gets, unless the model's
    ``planner.json`` says otherwise)."""
    rows = ["| algorithm | measured defaults (the knob's own for the rest) |", "|---|---|"]
    for algorithm, knobs in MEASURED.items():
        flat = [f"`{k}` {v}" for k, v in knobs.items() if k != "budget"]
        flat += [f"`budget.{k}` {v}" for k, v in knobs.get("budget", {}).items()]
        rows.append(f"| `{algorithm.value}` | {', '.join(flat) or '—'} |")
    return "\n".join([DSTART, *rows, DEND])


def _current(start: str = START, end: str = END) -> str:
    text = DOC.read_text()
    match = re.search(re.escape(start) + ".*?" + re.escape(end), text, re.S)
    assert match, f"{DOC} has no {start} … {end} block"
    return match.group(0)


def test_the_plan_parameter_table_is_the_schema() -> None:
    assert _current() == rendered(), "docs/planning.md is stale: run .venv/bin/python tests/unit/test_plan_docs.py"


def test_the_defaults_table_is_the_measured_defaults() -> None:
    assert _current(DSTART, DEND) == rendered_defaults(), (
        "docs/planning.md is stale: run .venv/bin/python tests/unit/test_plan_docs.py")


def test_every_knob_has_a_row() -> None:
    table = rendered()
    for cls, prefix in ((PlanConfig, ""), (Budget, "budget.")):
        for p in params(cls):
            assert f"| `{prefix}{p.name}` |" in table


if __name__ == "__main__":
    DOC.write_text(DOC.read_text().replace(_current(), rendered()).replace(_current(DSTART, DEND),
                                                                           rendered_defaults()))
    print(f"wrote {DOC}", file=sys.stderr)
