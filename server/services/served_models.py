"""Which models this server serves — the base and its loaded LoRA adapters — and what a request's ``model``
means: the base by name or path, an adapter by name, omitted the ``default_model`` setting, anything else a
404 ``model_not_found``."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.base import Engine
from planner import defaults as planner_defaults
from planner.defaults import PlannerDefaults
from server.config import Settings
from server.services.errors import UnknownModel


@dataclass
class ServedModels:
    engine: Engine
    settings: Settings
    _defaults: dict[str, PlannerDefaults] = field(default_factory=dict, repr=False)  # by model directory

    @property
    def base(self) -> str:
        return self.engine.info.name

    def adapters(self) -> dict[str, str]:
        return self.engine.adapters()

    def resolve(self, name: str | None) -> str:
        """The served name a request runs on (see the module's doc)."""
        info = self.engine.info
        if name is None:
            name = self.settings.default_model or info.name
        if name in (info.name, info.path, self.settings.model):
            return info.name
        if name in self.engine.adapters():
            return name
        served = ", ".join([info.name, *self.engine.adapters()])
        raise UnknownModel(f"model {name!r} is not served here; this server serves {served}", param="model")

    def adapter(self, served: str) -> str | None:
        """The adapter a served name runs (None: the base alone)."""
        return None if served == self.engine.info.name else served

    def path(self, served: str) -> str:
        """The directory a served name runs from (the base's, or its adapter's)."""
        return self.engine.info.path if served == self.engine.info.name else self.engine.adapters()[served]

    def remember_planner_defaults(self, path: str, defaults: PlannerDefaults) -> None:
        """The defaults of the model directory ``path``, as just read (an adapter loaded, or loaded again after its
        file changed)."""
        self._defaults[path] = defaults

    def planner_defaults(self, served: str) -> PlannerDefaults:
        """The plan defaults of a served model: its directory's ``planner.json`` (read once), else the
        measured ones. :class:`planner.defaults.InvalidPlannerDefaults` for a bad file."""
        path = self.path(served)
        if path not in self._defaults:
            self._defaults[path] = planner_defaults.load(path)
        return self._defaults[path]
