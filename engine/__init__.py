"""Engine interface and adapters.

``open_engine(model)`` gives the vLLM engine as an async context manager; :mod:`engine.vllm` is
imported only then, so importing this package never loads vLLM.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.base import (
    Engine,
    EngineLifecycle,
    GenerationChunk,
    GenerationRequest,
    ModelInfo,
    SequenceDelta,
    TokenLogprob,
)
from engine.errors import EngineDeadError, EngineError, EngineRequestError

if TYPE_CHECKING:
    from engine.vllm import VllmEngine


def open_engine(model: str | Path, *, dtype: str = "auto", served_model_name: str | None = None,
                **options: Any) -> VllmEngine:
    """The vLLM engine on the checkpoint ``model``, not yet started: ``async with open_engine(m) as e:``
    starts it and closes it on leaving. ``options`` are :class:`engine.vllm.VllmEngineConfig` fields."""
    from engine.vllm import VllmEngine, VllmEngineConfig

    path = Path(model)
    return VllmEngine(VllmEngineConfig(model=str(path), served_model_name=served_model_name or path.name,
                                       dtype=dtype, **options))


__all__ = [
    "Engine",
    "EngineDeadError",
    "EngineError",
    "EngineLifecycle",
    "EngineRequestError",
    "GenerationChunk",
    "GenerationRequest",
    "ModelInfo",
    "SequenceDelta",
    "TokenLogprob",
    "open_engine",
]
