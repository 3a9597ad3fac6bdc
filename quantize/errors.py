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


class BadTraces(QuantizeError):
    """The calibration file is missing, empty, or holds a line that is not a foresight trace."""


class BadCheckpoint(QuantizeError):
    """The model directory is not a causal-LM checkpoint this tool can quantize."""


class OutputExists(QuantizeError):
    """The output directory exists and holds files (``--force`` replaces it)."""


class IndivisibleLayers(QuantizeError):
    """Some linear layers' input width is not a multiple of the group size."""


class QuantizeEnvMissing(QuantizeError):
    """No Python environment with llm-compressor was found (``make quantize-env`` creates one)."""


class WorkerFailed(QuantizeError):
    """The quantization worker (llm-compressor, in its own environment) exited with an error."""


class EvaluationFailed(QuantizeError):
    """The quality evaluation through vLLM could not run (the quantized checkpoint is kept)."""
