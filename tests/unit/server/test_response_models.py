"""Every JSON route declares its response model (DESIGN §5); /metrics and HTML pages aside."""

from __future__ import annotations

from fastapi.routing import APIRoute

from engine.scripted import ScriptedEngine
from server.app import create_app
from tests.unit.server.conftest import settings

NOT_JSON = {"/metrics"}


def test_every_json_route_has_a_response_model() -> None:
    app = create_app(settings(), ScriptedEngine())
    routes = [r for r in app.routes if isinstance(r, APIRoute) and r.path not in NOT_JSON]
    assert routes
    missing = [r.path for r in routes if r.response_model is None]
    assert missing == []
