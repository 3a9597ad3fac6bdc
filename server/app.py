"""The application factory: ``create_app(settings, engine=None)``.

No import-time singletons: tests build apps with a scripted engine; the CLI
builds one with the vLLM engine. The engine loads in the background so that
``/health`` and ``/ready`` answer (503 on ``/ready``) while the model loads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, MutableMapping
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from planner.calibrate import CalibrationPolicy
from server.auth import KeyRing, RateLimiter, load_secret
from server.config import Settings
from server.engine.base import Engine
from server.engine.errors import EngineDeadError
from server.errors import install_error_handlers
from server.guards import Admission, AdmissionMiddleware, BodyLimitMiddleware, authenticate
from server.lifecycle import Lifecycle, Phase
from server.metrics import Metrics, MetricsMiddleware
from server.power import detect_power
from server.routes import health, openai, outcomes, plan, tco
from server.services.calibration import CalibrationService
from server.services.generation import GenerationService
from server.services.monitor import Monitor
from server.services.planning import PlanningService
from server.store import Store
from server.tco import TcoConfig
from server.warmup import warm_up

log = logging.getLogger("foresight.app")
EXIT_LOAD_FAILED = 1
EXIT_ENGINE_DEAD = 3
# how long shutdown lets a store that is still opening finish before cancelling it: a cancelled
# SQLite connect leaves its worker thread to answer a loop that is gone, and the connection unclosed
STORE_OPEN_GRACE_S = 10.0


def build_engine(settings: Settings) -> Engine:
    """The production engine: vLLM (CPU build on CPU machines)."""
    from server.engine.vllm_engine import VllmEngine, VllmEngineConfig

    return VllmEngine(
        VllmEngineConfig(
            model=settings.model,
            served_model_name=settings.model_name,
            dtype=settings.dtype,
            max_model_len=settings.max_model_len,
            gpu_memory_utilization=settings.gpu_memory_utilization,
            tensor_parallel_size=settings.tensor_parallel_size,
            pipeline_parallel_size=settings.pipeline_parallel_size,
            distributed_executor_backend=settings.distributed_executor_backend,
            cpu_kvcache_space_gib=settings.cpu_kvcache_space_gib,
            max_num_seqs=settings.max_num_seqs,
            enforce_eager=settings.enforce_eager,
            seed=settings.seed,
            log_stats=settings.metrics_enabled,
        )
    )


def tco_config(settings: Settings) -> TcoConfig:
    return TcoConfig(
        hardware_price=settings.tco_hardware_price, accelerators=settings.tco_accelerators,
        service_life_years=settings.tco_service_life_years, power_watts=settings.tco_power_watts,
        pue=settings.tco_pue, electricity_price_per_kwh=settings.tco_electricity_price_per_kwh,
        currency=settings.tco_currency, window_s=settings.tco_window_s,
    )


def create_app(
    settings: Settings,
    engine: Engine | None = None,
    *,
    request_exit: Callable[[int], None] | None = None,
) -> FastAPI:
    """Build the FastAPI app. ``request_exit(code)`` asks the process runner to stop."""
    the_engine = engine if engine is not None else build_engine(settings)
    lifecycle = Lifecycle()
    metrics = Metrics()
    exit_cb = request_exit or (lambda _code: None)

    def on_engine_dead(detail: str) -> None:
        if lifecycle.phase is not Phase.DEAD:
            log.error("engine died: %s; exiting so the supervisor restarts the server", detail)
            lifecycle.set(Phase.DEAD, detail)
            exit_cb(EXIT_ENGINE_DEAD)

    async def load() -> None:
        try:
            await the_engine.start()
        except Exception as exc:
            log.error("the model could not be loaded from %s: %s", settings.model, exc)
            lifecycle.set(Phase.FAILED, f"model load failed: {exc}")
            exit_cb(EXIT_LOAD_FAILED)
            return
        if settings.warmup:
            lifecycle.set(Phase.LOADING, "warming up")
            try:
                log.info("warm-up took %.1f s", await warm_up(the_engine))
            except EngineDeadError as exc:
                log.error("the engine died during warm-up: %s", exc)
                lifecycle.set(Phase.FAILED, f"the engine died during warm-up: {exc}")
                exit_cb(EXIT_LOAD_FAILED)
                return
            except Exception as exc:  # a warm-up that fails only costs the first request's latency
                log.warning("warm-up failed (%s); serving without it", exc)
        lifecycle.set(Phase.READY)
        log.info("ready: serving %s", the_engine.info.name)

    store = Store(settings.store_url)
    calibration = CalibrationService(
        store, settings.model_name, metrics,
        policy=CalibrationPolicy(settings.calibration_min_platt, settings.calibration_min_isotonic),
        refit_interval_s=settings.calibration_refit_interval_s,
    )

    admission = Admission(settings.max_num_seqs, settings.max_queue)
    monitor = Monitor(
        metrics, tco_config(settings), detect_power(settings.power_source), the_engine.num_unfinished,
        lambda: admission.waiting, interval_s=settings.monitor_interval_s,
    )
    limiter = RateLimiter()

    async def open_store() -> None:
        await calibration.start()
        if settings.auth_enabled and store.is_open:
            with contextlib.suppress(Exception):
                if not [k for k in await store.list_keys() if k.revoked_at is None]:
                    log.warning("no API keys yet: every /v1 request will get 401; create one with "
                                "`foresight keys create --name NAME` (same settings as this server)")

    async def watchdog() -> None:
        """Notices a dead engine without traffic, so the process exits and is restarted."""
        while True:
            await asyncio.sleep(settings.health_check_interval_s)
            if lifecycle.phase is Phase.READY:
                try:
                    await the_engine.check_health()
                except EngineDeadError as exc:
                    on_engine_dead(str(exc))
                    return
                except Exception as exc:  # pragma: no cover - a health probe must never kill the loop
                    log.warning("engine health check failed: %s", exc)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loader = asyncio.create_task(load())
        store_loader = asyncio.create_task(open_store())
        dog = asyncio.create_task(watchdog())
        if settings.metrics_enabled:
            monitor.start()
        app.state.loader = loader
        app.state.store_loader = store_loader
        try:
            yield
        finally:
            lifecycle.set(Phase.DRAINING)
            await asyncio.wait({store_loader}, timeout=STORE_OPEN_GRACE_S)
            for task in (loader, store_loader, dog):
                if not task.done():
                    task.cancel()
            await asyncio.gather(loader, store_loader, dog, return_exceptions=True)
            with contextlib.suppress(Exception):
                await the_engine.close()
            with contextlib.suppress(Exception):
                await calibration.close()
            await monitor.stop()

    app = FastAPI(
        title="Foresight Serve",
        version="0.1.0",
        description="OpenAI-compatible serving of foresight agent models, with planning and calibration.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = the_engine
    app.state.lifecycle = lifecycle
    app.state.metrics = metrics
    app.state.on_engine_dead = on_engine_dead
    app.state.generation = GenerationService(the_engine, settings, metrics, on_engine_dead)
    app.state.calibration = calibration
    app.state.monitor = monitor
    app.state.planning = PlanningService(app.state.generation, calibrator=calibration, memory=calibration)
    secret = load_secret(settings.auth_secret, settings.secret_path) if settings.auth_enabled else b"unused"
    app.state.keyring = KeyRing(store, secret, settings.auth_cache_ttl_s)
    app.state.limiter = limiter
    app.state.admission = admission
    install_error_handlers(app)
    keyed = [Depends(authenticate)]
    app.include_router(health.router)
    for router in (openai.router, plan.router, outcomes.router, tco.router):
        app.include_router(router, dependencies=keyed)

    def charge(scope: MutableMapping[str, Any], usage: dict[str, int]) -> None:
        principal = scope.get("state", {}).get("principal")
        if principal is not None:
            limiter.charge_tokens(principal, sum(usage.values()))

    app.add_middleware(AdmissionMiddleware, admission=admission, paths=GENERATION_PATHS)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, enabled=settings.metrics_enabled, on_finish=charge)
    if settings.cors_allow_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_allow_origins, allow_methods=["GET", "POST"],
                           allow_headers=["authorization", "content-type", "x-request-id"])
    if not settings.auth_enabled:
        for line in ("AUTHENTICATION IS DISABLED (auth_enabled=false):",
                     f"anyone who can reach {settings.host}:{settings.port} can use every /v1 endpoint.",
                     "Turn it back on unless this is a sealed test machine."):
            log.warning("!!! %s", line)
    return app


GENERATION_PATHS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/plan"})
