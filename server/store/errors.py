"""Errors of the outcome store (the server maps them to HTTP answers)."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of the outcome store's errors."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or refused the operation; nothing was stored."""


class PlanNotFound(StoreError):
    """No plan with this id was remembered (unknown, or served while the store was down)."""


class OutcomeExists(StoreError):
    """The plan already has an outcome and the request did not ask to replace it."""


class KeyExists(StoreError):
    """An API key with this name exists already."""
