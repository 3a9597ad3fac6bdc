"""Exceptions of the engine layer.

EngineError
 ├── EngineDeadError       the engine stopped and will not serve again
 └── EngineRequestError    the engine refused one request (bad input for this model)
"""

from __future__ import annotations


class EngineError(Exception):
    """Root of every error an engine raises."""


class EngineDeadError(EngineError):
    """The engine stopped and will not serve again; the process should restart."""


class EngineRequestError(EngineError, ValueError):
    """The engine refused one request because of its input."""
