"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from server.config import Settings
from server.engine.base import Engine
from server.errors import EngineUnavailable, NotReady
from server.lifecycle import Lifecycle, Phase
from server.metrics import Metrics
from server.services.generation import GenerationService


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_lifecycle(request: Request) -> Lifecycle:
    return request.app.state.lifecycle  # type: ignore[no-any-return]


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


def get_engine(request: Request) -> Engine:
    """The engine, if it is ready to take new work."""
    life: Lifecycle = request.app.state.lifecycle
    if life.phase is Phase.LOADING:
        raise NotReady("the model is still loading; retry shortly", code="loading")
    if life.phase is Phase.DRAINING:
        raise NotReady("the server is shutting down", code="draining")
    if life.phase in (Phase.DEAD, Phase.FAILED):
        raise EngineUnavailable(f"the engine is not available: {life.detail}")
    return request.app.state.engine  # type: ignore[no-any-return]


def get_generation(request: Request, engine: Annotated[Engine, Depends(get_engine)]) -> GenerationService:
    return request.app.state.generation  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
EngineDep = Annotated[Engine, Depends(get_engine)]
GenerationDep = Annotated[GenerationService, Depends(get_generation)]
