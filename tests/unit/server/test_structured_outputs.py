"""``response_format`` reaches the engine as a structured output; bad formats are 400s naming the field."""

from __future__ import annotations

import httpx
import pytest

from engine.base import StructuredOutput
from engine.scripted import ScriptedEngine

SCHEMA = {"type": "object", "properties": {"op": {"type": "string"}}, "required": ["op"]}
SCHEMA_PARAM = "response_format.json_schema.schema"
CHAT = {"model": "scripted", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


@pytest.mark.parametrize(("fmt", "want"), [
    ({"type": "json_schema", "json_schema": {"name": "op", "schema": SCHEMA, "strict": True}},
     StructuredOutput(json_schema=SCHEMA)),
    ({"type": "json_object"}, StructuredOutput(json_object=True)),
    ({"type": "text"}, None),
])
async def test_the_format_reaches_the_engine(client: httpx.AsyncClient, engine: ScriptedEngine, fmt: dict,
                                             want: StructuredOutput | None) -> None:
    r = await client.post("/v1/chat/completions", json={**CHAT, "response_format": fmt})
    assert r.status_code == 200, r.text
    assert engine.requests[-1].structured == want


@pytest.mark.parametrize(("fmt", "param"), [
    ({"type": "json_schema"}, "response_format"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}}, SCHEMA_PARAM),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}, SCHEMA_PARAM),
    ({"type": "json_schema", "json_schema": {"name": "has space", "schema": SCHEMA}},
     "response_format.json_schema.name"),
    ({"type": "yaml"}, "response_format.type"),
])
async def test_bad_formats_are_400_naming_the_field(client: httpx.AsyncClient, fmt: dict, param: str) -> None:
    r = await client.post("/v1/chat/completions", json={**CHAT, "response_format": fmt})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
