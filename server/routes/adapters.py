"""``/v1/adapters``: admin keys load and unload LoRA adapters at run time (an app key gets 403)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query

from protocol.adapters import AdapterLoadRequest, ModelEventList, ModelEventModel
from protocol.openai import ErrorResponse, ModelCard, now
from server.deps import AdaptersDep
from server.guards import AdminDep
from server.services.adapters import AdapterService

router = APIRouter(prefix="/v1")
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 403, 503)}
NAME = Path(min_length=1, max_length=128)


def _card(adapters: AdapterService, name: str, path: str, loaded: bool = True) -> ModelCard:
    info = adapters.models.engine.info
    return ModelCard(id=name, created=now(), root=path, parent=info.name, max_model_len=info.max_model_len,
                     quantization=info.quantization, dtype=info.dtype,
                     planner=adapters.models.planner_defaults(name).as_json() if loaded else None)


@router.post("/adapters", response_model=ModelCard, status_code=201,
             responses={**_ERRORS, 409: {"model": ErrorResponse}})
async def load_adapter(body: AdapterLoadRequest, adapters: AdaptersDep, admin: AdminDep) -> ModelCard:
    path = await adapters.load(body.name, body.path, actor=admin.name)
    return _card(adapters, body.name, path)


@router.get("/adapters/events", response_model=ModelEventList, responses=_ERRORS)
async def adapter_events(adapters: AdaptersDep, _admin: AdminDep,
                         limit: int = Query(default=100, ge=1, le=1000)) -> ModelEventList:
    return ModelEventList(data=[ModelEventModel(at=e.at, actor=e.actor, action=e.action, model=e.model,
                                                detail=e.detail) for e in await adapters.events(limit)])


@router.delete("/adapters/{name}", response_model=ModelCard,
               responses={**_ERRORS, 404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}})
async def unload_adapter(adapters: AdaptersDep, admin: AdminDep, name: str = NAME) -> ModelCard:
    path = await adapters.unload(name, actor=admin.name)
    return _card(adapters, name, path, loaded=False)
