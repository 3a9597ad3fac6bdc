"""``/v1/responses`` as one chat turn: a Responses request becomes a chat completion request (the same
template, tools, constraints and parsing), and the turn's choice becomes a Responses object.

The mapping: ``instructions`` → a system message first; a string ``input`` → one user message; message items
→ messages; consecutive ``function_call`` items → one assistant message with ``tool_calls`` (``call_id`` as
the call's id); ``function_call_output`` → a ``tool`` message answering ``call_id``; ``reasoning`` items are
dropped. ``max_output_tokens`` → ``max_tokens``; ``text.format`` → ``response_format``. Back: the choice's
content → a ``message`` item with one ``output_text`` part; its tool call → a ``function_call`` item; a turn
cut by ``max_output_tokens`` → ``status: "incomplete"``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Literal

from pydantic import ValidationError

from protocol.openai import ChatChoice, ChatCompletionRequest, ChatMessage, ToolCall, ToolCallFunction, now
from protocol.responses import (
    FunctionCallItem,
    FunctionCallOutputItem,
    IncompleteDetails,
    MessageItem,
    NamedFunctionChoice,
    OutputFunctionCall,
    OutputItem,
    OutputMessage,
    OutputTextPart,
    ReasoningItem,
    ResponseObject,
    ResponsesRequest,
)
from server.services.errors import InvalidRequest
from server.services.usage import TokenUsage

log = logging.getLogger("foresight.responses")
Status = Literal["in_progress", "completed", "incomplete"]
UNSERVED = (("store", True, "nothing is stored here: send store: false or leave it out"),
            ("background", True, "background responses are not served: leave background out"))


def _refuse_unserved(req: ResponsesRequest) -> None:
    for name, bad, why in UNSERVED:
        if getattr(req, name) == bad:
            raise InvalidRequest(f"{name}: {why}", param=name, code="unsupported_value")
    if req.previous_response_id is not None:
        raise InvalidRequest("previous_response_id: responses are not stored here; send the whole conversation "
                             "as input", param="previous_response_id", code="unsupported_value")


def _messages(req: ResponsesRequest) -> list[ChatMessage]:
    out = [ChatMessage(role="system", content=req.instructions)] if req.instructions else []
    if isinstance(req.input, str):
        return [*out, ChatMessage(role="user", content=req.input)]
    calls: list[ToolCall] = []
    made: set[str] = set()
    for i, item in enumerate(req.input):
        if isinstance(item, FunctionCallOutputItem) and item.call_id not in made:
            raise InvalidRequest(f"input[{i}].call_id {item.call_id!r} answers no earlier function_call item",
                             param=f"input.{i}.call_id")
        if isinstance(item, ReasoningItem):
            continue  # dropped, and it does not part the calls around it
        if isinstance(item, FunctionCallItem):
            made.add(item.call_id)
            calls.append(ToolCall(id=item.call_id, function=ToolCallFunction(name=item.name,
                                                                               arguments=item.arguments)))
            continue
        if calls:
            out.append(ChatMessage(role="assistant", content=None, tool_calls=calls))
            calls = []
        if isinstance(item, MessageItem):
            out.append(ChatMessage(role=item.role, content=item.text))
        elif isinstance(item, FunctionCallOutputItem):
            out.append(ChatMessage(role="tool", tool_call_id=item.call_id, content=item.text))
    if calls:
        out.append(ChatMessage(role="assistant", content=None, tool_calls=calls))
    return out


def _response_format(req: ResponsesRequest) -> dict[str, Any] | None:
    fmt = req.text.format if req.text else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    schema = {"name": fmt.name or "response", "schema": fmt.schema_ or {}, "strict": fmt.strict}
    return {"type": "json_schema", "json_schema": schema}


CHAT_TO_RESPONSES = {"messages": "input", "max_tokens": "max_output_tokens", "response_format": "text.format"}


def responses_param(param: str | None) -> str | None:
    """A chat request's field as the Responses request names it (``tools.0.function.parameters`` →
    ``tools.0.parameters``; ``response_format.json_schema.schema`` → ``text.format.schema``; a message →
    ``input``, whose items do not map one to one)."""
    if param is None:
        return None
    parts = param.split(".")
    head = CHAT_TO_RESPONSES.get(parts[0], parts[0])
    if head == "input":
        return head
    if head == "text.format":
        return "text.format" + (".schema" if parts[-1] == "schema" else "")
    return ".".join([head, *(p for p in parts[1:] if p != "function")])


def _field(loc: tuple[Any, ...]) -> str:
    return responses_param(".".join(str(x) for x in loc)) or ""


def to_chat(req: ResponsesRequest) -> ChatCompletionRequest:
    """The chat completion request of one Responses turn; unserved values are 400s naming the field."""
    _refuse_unserved(req)
    if req.unknown_fields:
        log.debug("ignoring unknown request fields: %s", ", ".join(req.unknown_fields))
    choice = req.tool_choice
    body: dict[str, Any] = {
        "model": req.model, "messages": _messages(req), "max_tokens": req.max_output_tokens,
        "temperature": req.temperature, "top_p": req.top_p, "seed": req.seed, "user": req.user,
        "ignore_eos": req.ignore_eos,
        "tools": [{"type": "function", "function": t.model_dump(exclude={"type"}, exclude_none=True)}
                  for t in req.tools] if req.tools else None,
        "tool_choice": ({"type": "function", "function": {"name": choice.name}}
                        if isinstance(choice, NamedFunctionChoice) else choice),
        "parallel_tool_calls": req.parallel_tool_calls, "response_format": _response_format(req),
    }
    if not body["messages"]:
        raise InvalidRequest("input has no message to answer", param="input")
    try:
        return ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _field(first.get("loc", ()))
        raise InvalidRequest(f"{field}: {first.get('msg', 'invalid value')}" if field else first.get("msg", "invalid"),
                         param=field or None) from None


def output_items(choice: ChatChoice) -> list[OutputItem]:
    """The choice's answer as Responses output items: its content, then its call."""
    status: Status = "incomplete" if choice.finish_reason == "length" else "completed"
    items: list[OutputItem] = []
    if choice.message.content:
        items.append(OutputMessage(id=f"msg_{uuid.uuid4().hex[:24]}", status=status,
                                   content=[OutputTextPart(text=choice.message.content)]))
    for call in choice.message.tool_calls or []:
        items.append(OutputFunctionCall(id=f"fc_{uuid.uuid4().hex[:24]}", call_id=call.id, name=call.function.name,
                                        arguments=call.function.arguments, status="completed"))
    return items


def response_object(req: ResponsesRequest, response_id: str, model: str, *, created: int | None = None,
                    choice: ChatChoice | None = None, usage: TokenUsage | None = None) -> ResponseObject:
    """The Responses object: in progress (no ``choice`` yet), or the finished turn."""
    status: Status = "in_progress"
    incomplete = None
    if choice is not None:
        status = "incomplete" if choice.finish_reason == "length" else "completed"
        incomplete = IncompleteDetails(reason="max_output_tokens") if status == "incomplete" else None
    return ResponseObject(
        id=response_id, created_at=created or now(), model=model, status=status,
        output=output_items(choice) if choice is not None else [],
        parallel_tool_calls=req.parallel_tool_calls is not False, tool_choice=req.tool_choice or "auto",
        tools=req.tools or [], instructions=req.instructions, max_output_tokens=req.max_output_tokens,
        temperature=req.temperature, top_p=req.top_p, metadata=req.metadata, text=req.text,
        incomplete_details=incomplete,
        usage=usage.responses() if usage is not None else None,
        foresight=choice.foresight if choice is not None else None,
    )
