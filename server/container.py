"""One typed container of everything a request may need, and its life.

``build_services`` constructs it (no I/O: the runner and tests can hold it before start-up);
``Services.running()`` is the app's lifespan: it loads the engine in the background (``/ready``
answers 503 meanwhile), opens the store — whose one owner this is —, runs the engine watchdog and
the monitor, and on the way out drains, closes the engine and closes the store. Routes reach it
only through the ``Annotated`` dependencies of :mod:`server.deps`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from engine.base import Engine
from engine.errors import EngineDeadError
from planner.calibrate import CalibrationPolicy
from planner.defaults import InvalidPlannerDefaults
from server.admission import Admission
from server.auth import KeyRing, load_secret
from server.config import Settings
from server.errors import SettingsError
from server.inspect.session import SessionSigner
from server.lifecycle import Lifecycle, Phase
from server.metrics import Metrics
from server.power import detect_power
from server.ratelimit import RateLimiter, open_storage
from server.services.adapters import AdapterService
from server.services.audit import AuditService, Retention
from server.services.calibration import CalibrationService
from server.services.calibrations import Calibrations
from server.services.generation import GenerationService
from server.services.keys import KeyService
from server.services.monitor import Monitor
from server.services.planning import PlanningService
from server.services.recorder import PlanRecorder
from server.services.usage import UsageLedger
from server.store import Store, StoreUnavailable
from server.tco import TcoConfig
from server.warmup import warm_up

log = logging.getLogger("foresight.app")
EXIT_LOAD_FAILED = 1
EXIT_ENGINE_DEAD = 3
# how long shutdown lets a store that is still opening finish before cancelling it: a cancelled
# SQLite connect leaves its worker thread to answer a loop that is gone, and the connection unclosed
STORE_OPEN_GRACE_S = 10.0


def build_engine(settings: Settings) -> Engine:
    """The production engine: vLLM (CPU build on CPU machines), not yet started."""
    from engine import open_engine

    return open_engine(
        settings.model, served_model_name=settings.model_name, dtype=settings.dtype,
        max_model_len=settings.max_model_len, gpu_memory_utilization=settings.gpu_memory_utilization,
        tensor_parallel_size=settings.tensor_parallel_size, pipeline_parallel_size=settings.pipeline_parallel_size,
        distributed_executor_backend=settings.distributed_executor_backend,
        cpu_kvcache_space_gib=settings.cpu_kvcache_space_gib,
        kv_cache_blocks=settings.kv_cache_blocks, block_size=settings.block_size, max_num_seqs=settings.max_num_seqs,
        enforce_eager=settings.enforce_eager, seed=settings.seed, log_stats=settings.metrics_enabled,
        adapters=tuple(settings.adapters.items()), enable_lora=settings.lora, max_loras=settings.max_loras,
        max_lora_rank=settings.max_lora_rank, scheduling_policy=settings.scheduling_policy,
    )


def tco_config(settings: Settings) -> TcoConfig:
    return TcoConfig(
        hardware_price=settings.tco_hardware_price, accelerators=settings.tco_accelerators,
        service_life_years=settings.tco_service_life_years, power_watts=settings.tco_power_watts,
        pue=settings.tco_pue, electricity_price_per_kwh=settings.tco_electricity_price_per_kwh,
        currency=settings.tco_currency, window_s=settings.tco_window_s,
    )


@dataclass
class Services:
    """Everything the routes use; one per app."""

    settings: Settings
    engine: Engine
    lifecycle: Lifecycle
    metrics: Metrics
    store: Store
    generation: GenerationService
    calibration: Calibrations
    planning: PlanningService
    monitor: Monitor
    keyring: KeyRing
    keys: KeyService
    retention: Retention
    audit: AuditService
    inspect_sessions: SessionSigner
    usage: UsageLedger
    recorder: PlanRecorder
    limiter: RateLimiter
    admission: Admission
    adapters: AdapterService
    request_exit: Callable[[int], None] = lambda _code: None
    loader: asyncio.Task[None] | None = field(default=None, init=False)  # the engine's load and warm-up
    store_loader: asyncio.Task[None] | None = field(default=None, init=False)

    def on_engine_dead(self, detail: str) -> None:
        """The engine died: mark it, and ask the runner to exit so that the supervisor restarts us."""
        if self.lifecycle.phase is not Phase.DEAD:
            log.error("engine died: %s; exiting so the supervisor restarts the server", detail)
            self.lifecycle.set(Phase.DEAD, detail)
            self.request_exit(EXIT_ENGINE_DEAD)

    # ------------------------------------------------------------------ life

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The app's lifespan. The engine is entered (``async with``) by the background loader, so
        ``/health`` and ``/ready`` answer while it loads, and left here on the way out."""
        engines = contextlib.AsyncExitStack()
        self.loader = asyncio.create_task(self._load(engines))
        self.store_loader = asyncio.create_task(self._open_store())
        dog = asyncio.create_task(self._watchdog())
        purge = asyncio.create_task(self._purge_when_open())
        accounts = asyncio.create_task(self.usage.run(self.settings.usage_flush_interval_s))
        maps = asyncio.create_task(self._sync_when_open())
        if self.settings.metrics_enabled:
            self.monitor.start()
        try:
            yield
        finally:
            self.lifecycle.set(Phase.DRAINING)
            await asyncio.wait({self.store_loader}, timeout=STORE_OPEN_GRACE_S)
            tasks = (self.loader, self.store_loader, dog, purge, accounts, maps)
            for task in tasks:
                if not task.done():
                    task.cancel()  # a load cut mid-start closes the engine itself (EngineLifecycle)
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await engines.aclose()
            with contextlib.suppress(Exception):
                await self.usage.flush()  # what was counted since the last flush
            with contextlib.suppress(Exception):
                await self.calibration.close()
            with contextlib.suppress(Exception):
                await self.store.close()
            with contextlib.suppress(Exception):
                await self.limiter.close()
            await self.monitor.stop()

    def _failed(self, detail: str) -> None:
        log.error("%s", detail)
        self.lifecycle.set(Phase.FAILED, detail)
        self.request_exit(EXIT_LOAD_FAILED)

    async def _load(self, engines: contextlib.AsyncExitStack) -> None:
        try:
            await engines.enter_async_context(self.engine)
        except Exception as exc:
            log.error("the model could not be loaded from %s: %s", self.settings.model, exc)
            self._failed(f"model load failed: {exc}")
            return
        try:  # a served model's planner.json is read now: a bad one stops the start, naming the file
            for served in (self.engine.info.name, *self.engine.adapters()):
                self.generation.models.planner_defaults(served)
        except InvalidPlannerDefaults as exc:
            self._failed(f"bad planner defaults: {exc}")
            return
        if self.settings.warmup:
            self.lifecycle.set(Phase.LOADING, "warming up")
            try:
                log.info("warm-up took %.1f s", await warm_up(self.engine))
            except EngineDeadError as exc:
                self._failed(f"the engine died during warm-up: {exc}")
                return
            except Exception as exc:  # a warm-up that fails only costs the first request's latency
                log.warning("warm-up failed (%s); serving without it", exc)
        self.lifecycle.set(Phase.READY)
        log.info("ready: serving %s", self.engine.info.name)

    async def _open_store(self) -> None:
        try:
            await self.store.open()
        except StoreUnavailable as exc:
            log.error("%s; plans are served but not remembered until it is back (tried on each use)", exc)
            return
        log.info("outcome store: %s", self.store.describe())
        await self.calibration.start(list(self.settings.adapters))
        if self.settings.auth_enabled and self.store.is_open:
            with contextlib.suppress(Exception):
                active = [k for k in await self.store.list_keys() if k.revoked_at is None]
                if not active:
                    log.warning("no API keys yet: every /v1 request will get 401; create one with "
                                "`foresight keys create --name NAME` (same settings as this server)")
                for k in active:
                    if k.role == "app" and "*" in k.domains:
                        log.warning("app key %r may use every domain (keys made before roles keep that): narrow "
                                    "it by making a key with --domains and revoking this one", k.name)

    async def _purge_when_open(self) -> None:
        """The audit trail's retention purge, once the store has had its chance to open."""
        if self.store_loader is not None:
            await asyncio.wait({self.store_loader})
        await self.retention.run(self.settings.plan_purge_interval_s)

    async def _sync_when_open(self) -> None:
        """Other replicas' refitted calibration maps, polled once the store has had its chance to open."""
        if self.store_loader is not None:
            await asyncio.wait({self.store_loader})
        await self.calibration.run_sync(self.settings.calibration_sync_interval_s)

    async def _watchdog(self) -> None:
        """Notices a dead engine without traffic, so the process exits and is restarted."""
        while True:
            await asyncio.sleep(self.settings.health_check_interval_s)
            if self.lifecycle.phase is Phase.READY:
                try:
                    await self.engine.check_health()
                except EngineDeadError as exc:
                    self.on_engine_dead(str(exc))
                    return
                except Exception as exc:  # pragma: no cover - a health probe must never kill the loop
                    log.warning("engine health check failed: %s", exc)


def build_services(settings: Settings, engine: Engine | None = None,
                   request_exit: Callable[[int], None] | None = None) -> Services:
    """Construct every service (no I/O); ``engine`` defaults to vLLM on ``settings.model``."""
    the_engine = engine if engine is not None else build_engine(settings)
    metrics = Metrics()
    store = Store(settings.store_url)
    policy = CalibrationPolicy(settings.calibration_min_platt, settings.calibration_min_isotonic)
    calibration = Calibrations(lambda model: CalibrationService(
        store, model, metrics, policy=policy, refit_interval_s=settings.calibration_refit_interval_s,
    ), settings.model_name)
    admission = Admission(settings.max_num_seqs, settings.max_queue, settings.batch_max_share)
    try:
        power = detect_power(settings.power_source)
    except RuntimeError as exc:  # power_source=nvml where NVML is not usable: a setting to fix, not a crash
        raise SettingsError(f"power_source: {exc}") from None
    monitor = Monitor(metrics, tco_config(settings), power, the_engine.num_unfinished,
                      lambda: admission.waiting, interval_s=settings.monitor_interval_s)
    secret = load_secret(settings.auth_secret, settings.secret_path) if settings.auth_enabled else b"unused"
    lifecycle = Lifecycle()
    services: Services
    generation = GenerationService(the_engine, settings, metrics, lambda detail: services.on_engine_dead(detail))
    keyring = KeyRing(store, secret, settings.auth_cache_ttl_s)
    usage = UsageLedger(store, metrics, monitor.cost_total)
    services = Services(
        settings=settings, engine=the_engine, lifecycle=lifecycle, metrics=metrics, store=store,
        generation=generation, calibration=calibration,
        planning=PlanningService(generation, calibrations=calibration),
        recorder=PlanRecorder(store, settings.model_name, metrics, usage, settings.max_plan_record_bytes),
        monitor=monitor, keyring=keyring, keys=KeyService(store, secret, keyring.forget_all),
        retention=Retention(store, settings.plan_retention_days), audit=AuditService(store),
        inspect_sessions=SessionSigner(secret), usage=usage,
        limiter=RateLimiter(open_storage(settings.redis_url),
                            on_error=lambda op: metrics.rate_limit_errors.labels(op).inc()),
        admission=admission, request_exit=request_exit or (lambda _code: None),
        adapters=AdapterService(generation.models, calibration, store, settings),
    )
    return services
