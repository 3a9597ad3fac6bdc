"""Exceptions of the planner package.

PlannerError
 └── InvalidPlanRequest   a planning parameter is out of range or unknown

A sampler's own errors (the engine's) pass through the planner unchanged.
"""

from __future__ import annotations


class PlannerError(Exception):
    """Root of every error the planner raises."""


class InvalidPlanRequest(PlannerError, ValueError):
    """A planning parameter is out of range or unknown; the message names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
