"""The application factory: ``create_app(settings, engine=None)``.

No import-time singletons: tests build apps with a scripted engine; the CLI builds one with the
vLLM engine. Every service lives in one :class:`server.container.Services`, whose ``running()`` is
the lifespan; routes reach it through :mod:`server.deps`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from engine.base import Engine
from server.access_log import AccessLogMiddleware, RequestIdMiddleware
from server.admission import BodyLimitMiddleware
from server.config import Settings
from server.container import EXIT_ENGINE_DEAD, EXIT_LOAD_FAILED, Services, build_services
from server.errors import install_error_handlers
from server.guards import account
from server.inspect.routes import router as inspector
from server.metrics import MetricsMiddleware
from server.routes import adapters, health, keys, openai, outcomes, plan, plans, responses, tco, usage

log = logging.getLogger("foresight.app")

__all__ = ["EXIT_ENGINE_DEAD", "EXIT_LOAD_FAILED", "create_app", "services_of"]


def services_of(app: FastAPI) -> Services:
    """The app's services (tests and the runner; routes use :mod:`server.deps`)."""
    services: Services = app.state.services
    return services


def create_app(settings: Settings, engine: Engine | None = None, *,
               request_exit: Callable[[int], None] | None = None) -> FastAPI:
    """Build the FastAPI app. ``request_exit(code)`` asks the process runner to stop."""
    services = build_services(settings, engine, request_exit)

    def lifespan(_app: FastAPI) -> AbstractAsyncContextManager[None]:
        return services.running()

    app = FastAPI(
        title="Foresight Serve",
        version="0.1.0",
        description="OpenAI-compatible serving of foresight agent models, with planning and calibration.",
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    keyed = [Depends(account)]
    app.include_router(health.router)
    app.include_router(inspector)  # its own login: a session cookie, not a bearer key
    for router in (openai.router, responses.router, plan.router, plans.router, outcomes.router, keys.router,
                   usage.router, tco.router, adapters.router):
        app.include_router(router, dependencies=keyed)
    # added innermost first: CORS → request id → access log → metrics → body limit → the app (admission is a
    # dependency of the generation routes, after authentication: server.guards.admitted)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    if settings.metrics_enabled:
        app.add_middleware(MetricsMiddleware, metrics=services.metrics)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestIdMiddleware)
    if settings.cors_allow_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_allow_origins, allow_methods=["GET", "POST"],
                           allow_headers=["authorization", "content-type", "x-request-id"])
    if not settings.auth_enabled:
        for line in ("AUTHENTICATION IS DISABLED (auth_enabled=false):",
                     f"anyone who can reach {settings.host}:{settings.port} can use every /v1 endpoint.",
                     "Turn it back on unless this is a sealed test machine."):
            log.warning("!!! %s", line)
    return app
