"""LoRA adapters loaded and unloaded at run time (admin), each action recorded in the store.

An adapter is checked against the served base before the engine sees it (a LoRA adapter, trained on this
base: :func:`catalog.adapters.check_adapter`); the engine then loads it under its name. Every load and unload
is written to the store's model events with the admin's name. This replica only: replicas behind a router
each load their own (docs/scaling.md).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from catalog.adapters import check_adapter
from catalog.errors import CatalogError
from engine.errors import EngineRequestError
from planner import defaults as planner_defaults
from planner.defaults import InvalidPlannerDefaults
from server.config import Settings
from server.services.calibrations import Calibrations
from server.services.errors import AlreadyExists, InUse, InvalidRequest, UnknownModel
from server.services.served_models import ServedModels
from server.store import Store, StoreUnavailable
from server.store.model_events import ModelEvent

log = logging.getLogger("foresight.adapters")


@dataclasses.dataclass
class AdapterService:
    models: ServedModels
    calibrations: Calibrations
    store: Store
    settings: Settings

    async def load(self, name: str, path: str, actor: str | None) -> str:
        """Load ``path`` as adapter ``name``; returns its resolved directory."""
        engine = self.models.engine
        if name == engine.info.name or name in engine.adapters():
            raise AlreadyExists(f"a model named {name!r} is served already", param="name", code="model_exists")
        directory = Path(path).expanduser()
        if not directory.is_dir():
            raise InvalidRequest(f"no directory at {path!r} on the server", param="path", code="adapter_not_found")
        try:
            info = check_adapter(directory, self.settings.model)
        except CatalogError as exc:
            raise InvalidRequest(str(exc), param="path", code=type(exc).__name__) from None
        try:
            defaults = planner_defaults.load(directory)
        except InvalidPlannerDefaults as exc:
            raise InvalidRequest(str(exc), param="path", code="invalid_planner_defaults") from None
        try:
            await engine.load_adapter(name, str(directory.resolve()))
        except EngineRequestError as exc:
            raise InvalidRequest(str(exc), param="path", code="adapter_refused") from None
        self.models.remember_planner_defaults(str(directory.resolve()), defaults)
        detail = {"path": str(directory.resolve()), "rank": info.rank, "base_sha256": info.base_sha256}
        await self._record(actor, "adapter_loaded", name, detail, undo=lambda: engine.unload_adapter(name))
        self.calibrations.of(name)
        log.info("adapter %s loaded from %s by %s", name, directory, actor or "the command line")
        return str(directory.resolve())

    async def unload(self, name: str, actor: str | None) -> str:
        """Unload adapter ``name``; returns the directory it was loaded from."""
        engine = self.models.engine
        loaded = engine.adapters()
        if name not in loaded:
            raise UnknownModel(f"no adapter named {name!r} is loaded", param="name")
        if self.models.resolve(None) == name:
            raise InUse(f"adapter {name!r} is the default_model: change the setting before unloading it",
                        param="name", code="model_in_use")
        await engine.unload_adapter(name)
        await self._record(actor, "adapter_unloaded", name, {"path": loaded[name]},
                           undo=lambda: engine.load_adapter(name, loaded[name]))
        log.info("adapter %s unloaded by %s", name, actor or "the command line")
        return loaded[name]

    async def events(self, limit: int) -> list[ModelEvent]:
        return await self.store.model_events(limit)

    async def _record(self, actor: str | None, action: str, name: str, detail: dict[str, object],
                      undo: Callable[[], Awaitable[None]]) -> None:
        """Write the event; if the store cannot, undo the action (an unrecorded change is not made)."""
        try:
            await self.store.log_model_event(actor, action, name, detail)
        except StoreUnavailable:
            await undo()
            raise
