"""Foresight planner: parse turns, calibrate confidence, branch or commit."""

from __future__ import annotations

from planner.errors import InvalidPlanRequest, PlannerError
from planner.format import (
    Action,
    Problem,
    Turn,
    format_confidence,
    parse_confidence,
    parse_turn,
    render_turn,
    render_world_model,
)

__all__ = [
    "Action",
    "InvalidPlanRequest",
    "PlannerError",
    "Problem",
    "Turn",
    "format_confidence",
    "parse_confidence",
    "parse_turn",
    "render_turn",
    "render_world_model",
]
