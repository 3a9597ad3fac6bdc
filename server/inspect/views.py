"""What the inspector's pages show, computed from the audit trail and calibration (pure: no HTTP)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from server.services.calibration import DomainSummary

SVG = 240  # the reliability diagram's size in px
PAD = 28


@dataclass
class Node:
    """One candidate in the drawn tree."""

    id: int
    depth: int
    rollout: str | None
    raw: float | None
    calibrated: float | None
    value: float | None
    action: str | None
    problems: list[str]
    tokens: int
    chosen: bool
    continued: bool = True  # False: a world-model span judged and not taken on to an action
    children: list[Node] = field(default_factory=list)


def _action(a: dict[str, Any] | None) -> str | None:
    if not a:
        return None
    if a.get("kind") == "tool_call":
        return f"{a.get('name')}({json.dumps(a.get('arguments'), ensure_ascii=False)})"
    return f"<{a.get('kind')}> {a.get('content', '')}"


def _node(c: dict[str, Any], chosen: int | None) -> Node:
    # records written before ``continued`` existed: a span not complete was not continued, and its
    # ``missing_action`` said only that
    continued = bool(c.get("continued", c.get("complete", True)))
    problems = [p.get("kind", "") for p in c.get("problems") or []
                if continued or p.get("kind") != "missing_action"]
    return Node(c["id"], c.get("depth", 1), c.get("rollout"), c.get("raw_confidence"), c.get("calibrated_confidence"),
                c.get("value"), _action(c.get("action")), problems, c.get("tokens", 0), c["id"] == chosen, continued)


def tree(candidates: list[dict[str, Any]] | None, chosen: int | None) -> list[Node]:
    """The candidates as a forest: roots are the first-level candidates."""
    nodes = {c["id"]: _node(c, chosen) for c in candidates or []}
    roots: list[Node] = []
    for c in candidates or []:
        parent = nodes.get(c.get("parent")) if c.get("parent") is not None else None
        (parent.children if parent else roots).append(nodes[c["id"]])
    return roots


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    r: float
    label: str


def reliability(summary: DomainSummary) -> dict[str, Any]:
    """The domain's reliability diagram as SVG coordinates: one dot per non-empty bin of calibrated
    confidence (x: mean confidence, y: observed success, size: count), beside the diagonal."""
    span = SVG - 2 * PAD
    bins = [b for b in summary.calibrated.bins if b.count > 0]
    biggest = max((b.count for b in bins), default=1)

    def at(v: float) -> float:
        return round(PAD + v * span, 1)

    points = [Point(at(b.mean_confidence), round(SVG - PAD - b.accuracy * span, 1),
                    round(3 + 7 * (b.count / biggest) ** 0.5, 1),
                    f"{b.count} plans: confidence {b.mean_confidence:.2f}, success {b.accuracy:.2f}") for b in bins]
    return {"size": SVG, "pad": PAD, "end": SVG - PAD, "points": points, "outcomes": summary.outcomes,
            "ece": summary.calibrated.ece, "brier": summary.calibrated.brier, "raw_ece": summary.raw.ece}
