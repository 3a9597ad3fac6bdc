"""``response_format`` reaches the engine as a structured output; bad formats are 400s naming the field."""

from __future__ import annotations

import httpx
import pytest

from engine.base import GenerationRequest, StructuredOutput
from engine.errors import EngineRequestError
from engine.scripted import ScriptedEngine
from tests.unit.server.conftest import running_app

SCHEMA = {"type": "object", "properties": {"op": {"type": "string"}}, "required": ["op"]}
SCHEMA_PARAM = "response_format.json_schema.schema"
CHAT = {"model": "scripted", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


@pytest.mark.parametrize(("fmt", "want"), [
    ({"type": "json_schema", "json_schema": {"name": "op", "schema": SCHEMA, "strict": True}},
     StructuredOutput(json_schema=SCHEMA)),
    ({"type": "json_object"}, StructuredOutput(json_object=True)),
    ({"type": "text"}, None),
    (None, None),
])
async def test_the_format_reaches_the_engine(client: httpx.AsyncClient, engine: ScriptedEngine, fmt: dict | None,
                                             want: StructuredOutput | None) -> None:
    body = CHAT if fmt is None else {**CHAT, "response_format": fmt}
    r = await client.post("/v1/chat/completions", json=body)
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


def _nested(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize("stream", [False, True])
async def test_a_schema_nested_too_deep_is_a_400_not_a_500(client: httpx.AsyncClient, stream: bool) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "deep", "schema": _nested(400)}}
    r = await client.post("/v1/chat/completions", json={**CHAT, "stream": stream, "response_format": fmt})
    assert r.status_code == 400 and r.json()["error"]["param"] == SCHEMA_PARAM


class _Picky(ScriptedEngine):
    def check_request(self, request: GenerationRequest) -> None:
        if request.structured is not None:
            raise EngineRequestError("the structured output cannot be enforced: no grammar for this")


@pytest.mark.parametrize("stream", [False, True])
async def test_a_schema_the_engine_cannot_enforce_is_a_400_before_any_stream(stream: bool) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}}
    async with running_app(_Picky(name="scripted")) as client:
        r = await client.post("/v1/chat/completions", json={**CHAT, "stream": stream, "response_format": fmt})
        assert r.status_code == 400 and r.json()["error"]["param"] == SCHEMA_PARAM
        assert "cannot be enforced" in r.json()["error"]["message"]
