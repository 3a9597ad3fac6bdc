"""Errors of the quantize package (the CLI prints them as one line naming the problem)."""

from __future__ import annotations


class QuantizeError(Exception):
    """Base class of the quantize package's errors."""


class UnknownGpu(QuantizeError):
    """The GPU name is not in the catalog."""


class BadModelConfig(QuantizeError):
    """config.json is missing, unreadable, or lacks a field the math needs."""


class NothingFits(QuantizeError):
    """No scheme fits the GPU budget at the context and concurrency asked."""
