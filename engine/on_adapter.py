"""One engine seen through one of its adapters: every request it runs names that adapter.

The reference evaluation, the planner's sampler and FC-RL's episodes run on an :class:`engine.base.Engine`;
``on_adapter(engine, name)`` gives them the base with adapter ``name`` (None: the base itself) without each
of them passing the name on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from engine.base import Engine, GenerationChunk, GenerationRequest, ModelInfo


class OnAdapter:
    """``engine`` with ``adapter`` set on every request (the rest is the engine's own)."""

    def __init__(self, engine: Engine, adapter: str) -> None:
        self._engine = engine
        self.adapter = adapter

    @property
    def info(self) -> ModelInfo:
        return replace(self._engine.info, name=self.adapter)

    def generate(self, request: GenerationRequest, request_id: str) -> AsyncIterator[GenerationChunk]:
        return self._engine.generate(replace(request, adapter=self.adapter), request_id)

    def check_request(self, request: GenerationRequest) -> None:
        self._engine.check_request(replace(request, adapter=self.adapter))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def on_adapter(engine: Engine, adapter: str | None) -> Engine:
    """``engine`` whose requests run on ``adapter`` (None: ``engine`` itself)."""
    return engine if adapter is None else OnAdapter(engine, adapter)  # type: ignore[return-value]
