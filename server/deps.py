"""FastAPI dependencies as ``Annotated`` aliases: the only way routes reach the services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from engine.base import Engine
from server.auth import Principal
from server.config import Settings
from server.container import Services
from server.errors import EngineUnavailable, NotReady
from server.lifecycle import Lifecycle, Phase
from server.metrics import Metrics
from server.ratelimit import RateLimiter
from server.services.audit import AuditService
from server.services.calibration import CalibrationService
from server.services.generation import GenerationService, TokenUsage
from server.services.keys import KeyService
from server.services.monitor import Monitor
from server.services.planning import PlanningService
from server.services.usage import UsageLedger


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(services: ServicesDep) -> Settings:
    return services.settings


def get_lifecycle(services: ServicesDep) -> Lifecycle:
    return services.lifecycle


def get_metrics(services: ServicesDep) -> Metrics:
    return services.metrics


def get_engine(services: ServicesDep) -> Engine:
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


def get_generation(services: ServicesDep, _ready: EngineDep) -> GenerationService:
    return services.generation


def get_planning(services: ServicesDep, _ready: EngineDep) -> PlanningService:
    return services.planning


def get_calibration(services: ServicesDep) -> CalibrationService:
    return services.calibration


def get_monitor(services: ServicesDep) -> Monitor:
    return services.monitor


def get_keys(services: ServicesDep) -> KeyService:
    return services.keys


def get_audit(services: ServicesDep) -> AuditService:
    return services.audit


def get_usage(services: ServicesDep) -> UsageLedger:
    return services.usage


@dataclass
class Meter:
    """A request's token use, reported by its route once the engine has answered (or failed): it is
    charged to the key's token limit and written into the request's access record."""

    limiter: RateLimiter
    principal: Principal | None
    state: dict[str, Any]
    ledger: UsageLedger | None = None

    def charge(self, usage: TokenUsage) -> None:
        record = self.state.setdefault("usage", {"prompt_tokens": 0, "completion_tokens": 0})
        record["prompt_tokens"] += usage.prompt_tokens
        record["completion_tokens"] += usage.completion_tokens
        if self.principal is not None:
            self.limiter.charge_tokens(self.principal, usage.total)
        if self.ledger is not None:
            self.ledger.tokens(self.principal.name if self.principal else None, usage.prompt_tokens,
                               usage.completion_tokens)


def get_meter(request: Request, services: ServicesDep) -> Meter:
    state: dict[str, Any] = request.scope.setdefault("state", {})
    return Meter(services.limiter, state.get("principal"), state, services.usage)


SettingsDep = Annotated[Settings, Depends(get_settings)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
GenerationDep = Annotated[GenerationService, Depends(get_generation)]
PlanningDep = Annotated[PlanningService, Depends(get_planning)]
CalibrationDep = Annotated[CalibrationService, Depends(get_calibration)]
MonitorDep = Annotated[Monitor, Depends(get_monitor)]
MeterDep = Annotated[Meter, Depends(get_meter)]
KeysDep = Annotated[KeyService, Depends(get_keys)]
AuditDep = Annotated[AuditService, Depends(get_audit)]
UsageDep = Annotated[UsageLedger, Depends(get_usage)]
