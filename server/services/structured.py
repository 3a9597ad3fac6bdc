"""``response_format`` as the engine's structured output: a JSON Schema checked here first, so a schema
that is not JSON Schema is a 400 naming the field, never an engine failure."""

from __future__ import annotations

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from engine.base import StructuredOutput
from protocol.openai import ResponseFormat
from server.errors import BadRequest

SCHEMA_PARAM = "response_format.json_schema.schema"


def structured_output(fmt: ResponseFormat | None) -> StructuredOutput | None:
    """What the engine must constrain the answer to, or None for free text."""
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return StructuredOutput(json_object=True)
    assert fmt.json_schema is not None  # the request model requires it for json_schema
    schema = fmt.json_schema.schema_
    if not schema:
        raise BadRequest("response_format.json_schema.schema is empty: give the JSON Schema the answer must "
                         "satisfy", param=SCHEMA_PARAM)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(top level)"
        raise BadRequest(f"response_format.json_schema.schema is not a valid JSON Schema at {where}: "
                         f"{exc.message}", param=SCHEMA_PARAM) from None
    return StructuredOutput(json_schema=schema)
