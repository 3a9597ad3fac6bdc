"""docs/openapi.json is the app's OpenAPI schema, so clients can be generated from the repo. After an API
change: ``.venv/bin/python -m tests.unit.server.test_openapi``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from engine.scripted import ScriptedEngine
from server.app import create_app
from tests.unit.server.conftest import settings

DOC = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"


def schema() -> dict[str, Any]:
    return create_app(settings(), ScriptedEngine()).openapi()


def rendered() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"


def test_the_published_schema_is_the_apps() -> None:
    stale = "docs/openapi.json is stale: run .venv/bin/python -m tests.unit.server.test_openapi"
    assert DOC.read_text() == rendered(), stale


def test_the_schema_has_every_route_and_the_plan_knobs() -> None:
    s = schema()
    routes = {"/v1/plan", "/v1/outcomes", "/v1/calibration", "/v1/chat/completions", "/v1/tco", "/health"}
    assert routes <= set(s["paths"])
    plan = s["components"]["schemas"]["PlanRequest"]["properties"]
    assert {"algorithm", "width", "root_rounds", "budget", "max_tokens_per_turn"} <= set(plan)


if __name__ == "__main__":
    DOC.write_text(rendered())
    print(f"wrote {DOC}", file=sys.stderr)
