"""Engine interface and adapters. Import ``server.engine.vllm_engine`` only where vLLM is wanted."""

from __future__ import annotations

from server.engine.base import (
    Engine,
    GenerationChunk,
    GenerationRequest,
    ModelInfo,
    SequenceDelta,
    TokenLogprob,
)
from server.engine.errors import EngineDeadError, EngineError, EngineRequestError

__all__ = [
    "Engine",
    "EngineDeadError",
    "EngineError",
    "EngineRequestError",
    "GenerationChunk",
    "GenerationRequest",
    "ModelInfo",
    "SequenceDelta",
    "TokenLogprob",
]
