"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from engine.errors import EngineDeadError
from protocol.health import Health, Readiness
from server.deps import LifecycleDep, MetricsDep, ServicesDep, SettingsDep
from server.guards import authenticate, require_admin
from server.lifecycle import Phase

router = APIRouter()


@router.get("/health", summary="Process alive and engine not dead", response_model=Health,
            responses={503: {"model": Health}})
async def health(services: ServicesDep, life: LifecycleDep) -> JSONResponse:
    if life.phase in (Phase.DEAD, Phase.FAILED):
        return JSONResponse({"status": "dead", "detail": life.detail}, status_code=503)
    engine = services.engine
    if life.phase in (Phase.READY, Phase.DRAINING):
        try:
            await engine.check_health()
        except EngineDeadError as exc:
            services.on_engine_dead(str(exc))
            return JSONResponse({"status": "dead", "detail": str(exc)}, status_code=503)
    unfinished = engine.num_unfinished() if life.phase in (Phase.READY, Phase.DRAINING) else 0
    return JSONResponse({"status": "ok", "phase": life.phase.value, "unfinished_requests": unfinished})


@router.get("/ready", summary="Model loaded and accepting work", response_model=Readiness,
            responses={503: {"model": Readiness}})
async def ready(life: LifecycleDep) -> JSONResponse:
    code = 200 if life.phase is Phase.READY else 503
    headers = None if code == 200 else {"Retry-After": "5"}
    return JSONResponse({"ready": code == 200, "phase": life.phase.value, "detail": life.detail},
                        status_code=code, headers=headers)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request, services: ServicesDep, metrics: MetricsDep, settings: SettingsDep) -> Response:
    if settings.metrics_require_key:  # an admin key: the metrics name every key and its usage
        await require_admin(await authenticate(request, services))
    if not settings.metrics_enabled:
        return JSONResponse({"error": {"message": "metrics are disabled", "type": "not_found_error",
                                       "code": 404, "param": None}}, status_code=404)
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
