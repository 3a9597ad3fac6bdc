"""A foresight turn as an OpenAI assistant message, when the request declares ``tools``.

The turn is parsed with the planner's parser; its one action becomes:

- ``<tool_call>{"name", "arguments"}</tool_call>`` of a declared function whose arguments satisfy its
  JSON Schema → ``message.tool_calls`` (one call: a turn has one action), ``finish_reason: "tool_calls"``;
- ``<search>q</search>`` → a call of the declared tool ``search`` with ``{"query": q}`` (no such tool:
  the text stays content);
- ``<answer>text</answer>`` → ``content = text``.

A call of an undeclared function, or arguments that do not satisfy the schema, is never passed on as a
call: the choice ends with the model's own ``finish_reason``, and the reason is in
``foresight.problems`` (``undeclared_tool``, ``invalid_tool_arguments``). A ``required`` or named
``tool_choice`` constrains decoding (:meth:`Tools.required_call`): the foresight is free, the turn ends in
one well-formed call; a turn cut by ``max_tokens`` before its call still reports ``tool_call_missing``.
``tool_choice: "none"`` passes on no call. ``content`` is otherwise the text outside the tags.
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from engine.base import StructuredOutput
from planner.format import parse_turn, text_outside_tags
from protocol.openai import (
    AssistantMessage,
    ChatMessage,
    ForesightInfo,
    ForesightProblem,
    NamedToolChoice,
    ToolCall,
    ToolCallFunction,
    ToolFields,
)
from server.services.errors import InvalidRequest

SEARCH_TOOL = "search"
CALL_ROOM = 64  # tokens kept for a required call after the free foresight (half of max_tokens, if less)
ACTION_TAGS = ("<tool_call>", "<search>", "<answer>")  # before a required call, the free text opens no action


@functools.lru_cache(maxsize=128)
def _validator(schema: str) -> Draft202012Validator:
    """The checked validator of a schema (given as sorted JSON). Cached: an agent sends the same tools every
    turn, and checking a schema costs more than the rest of the request's tool handling."""
    parsed = json.loads(schema)
    Draft202012Validator.check_schema(parsed)
    return Draft202012Validator(parsed)


@dataclass(frozen=True)
class Tools:
    """The functions a request declared (name → parameters' validator) and its ``tool_choice``."""

    validators: dict[str, Draft202012Validator]
    choice: str  # "auto", "none", "required", or the name of the one function to call
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)  # as declared (key order kept)

    @classmethod
    def of(cls, req: ToolFields) -> Tools | None:
        """None when the request declares no tools; a 400 naming the field for a schema that is not one."""
        if not req.tools:
            return None
        validators = {}
        for i, tool in enumerate(req.tools):
            try:
                validators[tool.function.name] = _validator(json.dumps(tool.function.parameters, sort_keys=True))
            except (SchemaError, RecursionError) as exc:
                why = exc.message if isinstance(exc, SchemaError) else "nested too deeply"
                raise InvalidRequest(f"tools[{i}].function.parameters is not a valid JSON Schema: {why}",
                                 param=f"tools.{i}.function.parameters") from None
        choice = req.tool_choice
        named = choice.function.name if isinstance(choice, NamedToolChoice) else None
        schemas = {t.function.name: t.function.parameters for t in req.tools}
        return cls(validators, named or (choice if isinstance(choice, str) else "auto"), schemas)

    def required_call(self, max_tokens: int) -> StructuredOutput | None:
        """With ``tool_choice`` ``required`` or a named function: decoding constrained so that the turn ends in
        one call of an allowed function whose arguments satisfy its schema, while the foresight before it
        stays free text (an xgrammar structural tag), at most ``max_tokens`` less room for the call, so that
        the call comes before the turn is cut. None otherwise. The call is written
        ``<tool_call>{"name": …, "arguments": …}</tool_call>``, with or without newlines inside the tags
        (Hermes and Qwen style)."""
        if self.choice in ("auto", "none"):
            return None
        names = list(self.validators) if self.choice == "required" else [self.choice]
        tags: list[dict[str, Any]] = [{
            "type": "tag", "begin": f'<tool_call>{nl}{{"name": "{name}", "arguments": ',
            "content": {"type": "json_schema", "json_schema": self.schemas.get(name) or {"type": "object"},
                        "max_whitespace_cnt": 1},
            "end": f"}}{nl}</tool_call>",
        } for name in names for nl in ("", "\n")]
        if SEARCH_TOOL in names:  # <search>q</search> is a call of the declared search tool too
            tags.append({"type": "tag", "begin": "<search>", "content": {"type": "any_text"}, "end": "</search>"})
        free = {"type": "any_text", "excludes": list(ACTION_TAGS),
                "max_tokens": max(1, max_tokens - min(max_tokens // 2, CALL_ROOM))}
        return StructuredOutput(structural_tag={"type": "structural_tag", "format": {
            "type": "sequence", "elements": [free, {"type": "or", "elements": tags}]}})

    def template_tools(self, req: ToolFields) -> list[dict[str, Any]]:
        """The tools as chat templates take them (``apply_chat_template(..., tools=...)``)."""
        return [t.model_dump(exclude_none=True) for t in req.tools or []]


def check_messages(messages: list[ChatMessage], where: str = "messages") -> None:
    """A 400 naming the message for a ``tool`` message that answers no earlier call, or calls on a message that
    is not the assistant's. The contents are the app's and are never rewritten."""
    calls: set[str] = set()
    for i, m in enumerate(messages):
        if m.tool_calls and m.role != "assistant":
            raise InvalidRequest(f"{where}[{i}]: only assistant messages carry tool_calls",
                                 param=f"{where}.{i}.tool_calls")
        calls.update(c.id for c in m.tool_calls or [])
        if m.role != "tool":
            continue
        if not m.tool_call_id:
            raise InvalidRequest(f"{where}[{i}]: a tool message needs the tool_call_id of the call it answers",
                             param=f"{where}.{i}.tool_call_id")
        if m.tool_call_id not in calls:
            raise InvalidRequest(f"{where}[{i}].tool_call_id {m.tool_call_id!r} answers no earlier assistant tool call",
                             param=f"{where}.{i}.tool_call_id")


def _call(name: str, arguments: Any) -> ToolCall:
    return ToolCall(id=f"call_{uuid.uuid4().hex[:24]}",
                    function=ToolCallFunction(name=name, arguments=json.dumps(arguments, ensure_ascii=False)))


def _wanted(tools: Tools, action: Any, problems: list[ForesightProblem]) -> tuple[str, Any] | None:
    """The (name, arguments) the action calls, if it may be passed on; else None with the reason."""
    if action.kind == "search":
        return (SEARCH_TOOL, {"query": action.content}) if SEARCH_TOOL in tools.validators else None
    if action.name is None:
        return None  # not valid JSON or no name: the parser reported invalid_tool_call
    validator = tools.validators.get(action.name)
    if validator is None:
        problems.append(ForesightProblem(kind="undeclared_tool", detail=f"{action.name!r} is not among the tools"))
        return None
    arguments = action.arguments if action.arguments is not None else {}
    try:
        error = next(iter(validator.iter_errors(arguments)), None)
    except Exception as exc:  # a schema that checks but cannot be applied (a $ref to nothing)
        problems.append(ForesightProblem(kind="invalid_tool_arguments",
                                         detail=f"{action.name}: its parameters schema cannot be applied: {exc}"[:300]))
        return None
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        problems.append(ForesightProblem(kind="invalid_tool_arguments",
                                         detail=f"{action.name} at {where}: {error.message}"[:300]))
        return None
    return action.name, arguments


def tool_message(text: str, finish_reason: str | None, tools: Tools) -> tuple[AssistantMessage, str | None,
                                                                               ForesightInfo]:
    """The OpenAI message, the finish reason and the foresight of one generated turn."""
    turn = parse_turn(text)
    problems = [ForesightProblem(kind=p.kind, detail=p.detail) for p in turn.problems]
    action = turn.action
    outside = text_outside_tags(text) or None
    wanted = None
    if action is not None and action.kind in ("tool_call", "search"):
        wanted = _wanted(tools, action, problems)
        if wanted is not None and tools.choice == "none":
            problems.append(ForesightProblem(kind="tool_choice_none", detail=f"the turn called {wanted[0]!r}"))
            wanted = None
        elif wanted is not None and tools.choice not in ("auto", "required") and wanted[0] != tools.choice:
            problems.append(ForesightProblem(kind="tool_call_missing", detail=(
                f"tool_choice asks for {tools.choice!r}, the turn called {wanted[0]!r}")))
            wanted = None
    if wanted is None and tools.choice not in ("auto", "none") and not any(
            p.kind == "tool_call_missing" for p in problems):
        problems.append(ForesightProblem(kind="tool_call_missing", detail=f"tool_choice is {tools.choice!r}"))
    foresight = ForesightInfo(rollout=turn.imaginary, confidence=turn.confidence, problems=problems)
    if wanted is not None:
        return AssistantMessage(content=outside, tool_calls=[_call(*wanted)]), "tool_calls", foresight
    content = action.content if action is not None and action.kind == "answer" else outside
    return AssistantMessage(content=content), finish_reason, foresight
