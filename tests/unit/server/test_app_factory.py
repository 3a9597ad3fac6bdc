"""create_app: every JSON route declares its response model (DESIGN §5; /metrics and HTML pages aside), and a
setting that cannot work stops it with a SettingsError (the CLI prints it; no traceback)."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from engine.scripted import ScriptedEngine
from server.app import create_app
from tests.unit.server.conftest import settings

NOT_JSON = {"/metrics"}


def test_every_json_route_has_a_response_model() -> None:
    app = create_app(settings(), ScriptedEngine())
    routes = [r for r in app.routes if isinstance(r, APIRoute) and r.path not in NOT_JSON
              and not r.path.startswith("/inspect")]  # the inspector's HTML pages
    assert routes
    missing = [r.path for r in routes if r.response_model is None]
    assert missing == []


def test_a_power_source_that_is_not_there_is_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from server import container
    from server.errors import SettingsError

    def no_nvml(mode: str) -> None:
        raise RuntimeError("power_source=nvml but NVML is not usable: no driver")

    monkeypatch.setattr(container, "detect_power", no_nvml)
    with pytest.raises(SettingsError, match="power_source"):
        create_app(settings(power_source="nvml"), ScriptedEngine())
