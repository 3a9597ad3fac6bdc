"""``response_format`` as the engine's structured output: a JSON Schema checked here first, so a schema
that is not JSON Schema is a 400 naming the field, never an engine failure."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from engine.base import StructuredOutput
from protocol.openai import ResponseFormat
from server.services.errors import InvalidRequest

SCHEMA_PARAM = "response_format.json_schema.schema"
MAX_SCHEMA_DEPTH = 64  # nesting of objects and arrays in a schema (the checks below recurse)


def _depth(value: Any) -> int:
    """How deeply ``value``'s objects and arrays nest, without recursing."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_SCHEMA_DEPTH:
                stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def structured_output(fmt: ResponseFormat | None) -> StructuredOutput | None:
    """What the engine must constrain the answer to, or None for free text."""
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return StructuredOutput(json_object=True)
    assert fmt.json_schema is not None  # the request model requires it for json_schema
    schema = fmt.json_schema.schema_
    if not schema:
        raise InvalidRequest("response_format.json_schema.schema is empty: give the JSON Schema the answer must "
                         "satisfy", param=SCHEMA_PARAM)
    if _depth(schema) > MAX_SCHEMA_DEPTH:
        raise InvalidRequest(f"response_format.json_schema.schema nests deeper than {MAX_SCHEMA_DEPTH} levels",
                         param=SCHEMA_PARAM)
    try:
        Draft202012Validator.check_schema(schema)
    except RecursionError:
        raise InvalidRequest("response_format.json_schema.schema is too deeply nested", param=SCHEMA_PARAM) from None
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(top level)"
        raise InvalidRequest(f"response_format.json_schema.schema is not a valid JSON Schema at {where}: "
                         f"{exc.message}", param=SCHEMA_PARAM) from None
    return StructuredOutput(json_schema=schema)
