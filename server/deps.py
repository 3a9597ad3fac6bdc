"""FastAPI dependencies as ``Annotated`` aliases: the only way routes reach the services.

They are ``async def`` even where they only look something up: FastAPI runs a plain ``def`` dependency in its
thread pool, a thread hop per dependency per request (profiled: 7% of the server's busy time under load
went to those hops before).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request

from engine.base import Engine
from server.auth import Principal
from server.config import Settings
from server.container import Services
from server.errors import EngineUnavailable, NotReady
from server.lifecycle import Lifecycle, Phase
from server.metrics import Metrics
from server.services.adapters import AdapterService
from server.services.audit import AuditService
from server.services.calibrations import Calibrations
from server.services.generation import GenerationService
from server.services.keys import KeyService
from server.services.monitor import Monitor
from server.services.planning import PlanningService
from server.services.recorder import PlanRecorder
from server.services.served_models import ServedModels
from server.services.usage import TokenUsage, UsageLedger


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    return services.settings


async def get_lifecycle(services: ServicesDep) -> Lifecycle:
    return services.lifecycle


async def get_metrics(services: ServicesDep) -> Metrics:
    return services.metrics


async def get_engine(services: ServicesDep) -> Engine:
    """The engine, if it is ready to take new work."""
    life = services.lifecycle
    if life.phase is Phase.LOADING:
        raise NotReady("the model is still loading; retry shortly", code="loading")
    if life.phase is Phase.DRAINING:
        raise NotReady("the server is shutting down", code="draining")
    if life.phase in (Phase.DEAD, Phase.FAILED):
        raise EngineUnavailable(f"the engine is not available: {life.detail}")
    return services.engine


EngineDep = Annotated[Engine, Depends(get_engine)]


async def get_generation(services: ServicesDep, _ready: EngineDep) -> GenerationService:
    return services.generation


async def get_planning(services: ServicesDep, _ready: EngineDep) -> PlanningService:
    return services.planning


async def get_calibration(services: ServicesDep) -> Calibrations:
    return services.calibration


async def get_monitor(services: ServicesDep) -> Monitor:
    return services.monitor


async def get_models(services: ServicesDep) -> ServedModels:
    return services.generation.models


async def get_adapters(services: ServicesDep) -> AdapterService:
    return services.adapters


async def get_keys(services: ServicesDep) -> KeyService:
    return services.keys


async def get_audit(services: ServicesDep) -> AuditService:
    return services.audit


async def get_recorder(services: ServicesDep) -> PlanRecorder:
    return services.recorder


async def get_usage(services: ServicesDep) -> UsageLedger:
    return services.usage


def charge(services: Services, principal: Principal | None, state: dict[str, Any], usage: TokenUsage) -> None:
    """Charge one request's tokens, once: the key's token limit, the usage ledger, the token metrics, and the
    request's access record (``state["usage"]``)."""
    state["usage"] = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}
    if principal is not None:
        services.limiter.charge_tokens(principal, usage.total)
    services.usage.tokens(principal.name if principal else None, usage.prompt_tokens, usage.completion_tokens,
                          usage.model)
    services.metrics.count_tokens("prompt", usage.prompt_tokens)
    services.metrics.count_tokens("completion", usage.completion_tokens)


async def request_tokens(request: Request, services: ServicesDep) -> AsyncIterator[TokenUsage]:
    """The request's token count, which the generation service adds to as the engine answers and the response's
    ``usage`` is rendered from; charged once (:func:`charge`) when the request is over — after the response
    was sent, so a stream's tokens are all in it — however it ended."""
    usage = TokenUsage()
    state: dict[str, Any] = request.scope.setdefault("state", {})
    state["tokens"] = usage  # the request is counted under the model it ran on (server.guards.account)
    try:
        yield usage
    finally:
        charge(services, state.get("principal"), state, usage)


SettingsDep = Annotated[Settings, Depends(get_settings)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
GenerationDep = Annotated[GenerationService, Depends(get_generation)]
PlanningDep = Annotated[PlanningService, Depends(get_planning)]
CalibrationDep = Annotated[Calibrations, Depends(get_calibration)]
MonitorDep = Annotated[Monitor, Depends(get_monitor)]
RecorderDep = Annotated[PlanRecorder, Depends(get_recorder)]
TokensDep = Annotated[TokenUsage, Depends(request_tokens)]
KeysDep = Annotated[KeyService, Depends(get_keys)]
AdaptersDep = Annotated[AdapterService, Depends(get_adapters)]
ModelsDep = Annotated[ServedModels, Depends(get_models)]
AuditDep = Annotated[AuditService, Depends(get_audit)]
LedgerDep = Annotated[UsageLedger, Depends(get_usage)]
