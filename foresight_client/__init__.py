"""The typed Python client of Foresight Serve: ``plan``, ``report_outcome``, ``calibration`` (sync and
async) and the :class:`Episode` helper. It speaks the wire models of :mod:`protocol` and never imports
the server; chat and completions go through the official ``openai`` client."""

from __future__ import annotations

from foresight_client.aio import AsyncForesight
from foresight_client.episode import AsyncEpisode, Episode, Outcome, Step
from foresight_client.errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    DeadlineExceededError,
    ForesightError,
    NotFoundError,
    RateLimitError,
    ServiceUnavailableError,
)
from foresight_client.sync import Foresight

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "AsyncEpisode",
    "AsyncForesight",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "DeadlineExceededError",
    "Episode",
    "Foresight",
    "ForesightError",
    "NotFoundError",
    "Outcome",
    "RateLimitError",
    "ServiceUnavailableError",
    "Step",
]
