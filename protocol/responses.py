"""``POST /v1/responses``: the part of OpenAI's Responses API that maps onto one chat turn.

Served: ``input`` (a string, or items: messages, ``function_call`` and ``function_call_output``),
``instructions``, function ``tools``, ``tool_choice``, ``max_output_tokens``, ``temperature``, ``top_p``,
``text.format`` (structured outputs) and ``stream``. Nothing is stored: an omitted ``store`` means false, and
``store: true``, ``previous_response_id`` and ``background: true`` are 400s naming the field. Unknown fields
are accepted and logged, as on the other OpenAI routes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from planner.params import SEED_MAX, SEED_MIN
from protocol.openai import ForesightInfo, _Request


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ContentPart(_Open):
    """Text of a message: ``input_text`` (the app's), ``output_text`` (an earlier answer) or a ``refusal``."""

    type: Literal["input_text", "output_text", "refusal"]
    text: str | None = None
    refusal: str | None = None

    @property
    def value(self) -> str:
        return self.text if self.text is not None else (self.refusal or "")


class MessageItem(_Open):
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[ContentPart]

    @property
    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.value for p in self.content)


class FunctionCallItem(_Open):
    """A call the model made earlier (sent back as history)."""

    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str
    id: str | None = None


class OutputText(_Open):
    type: Literal["input_text", "output_text"]
    text: str


class FunctionCallOutputItem(_Open):
    """What the app's function returned, for the call ``call_id``."""

    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: str | list[OutputText]

    @property
    def text(self) -> str:
        return self.output if isinstance(self.output, str) else "".join(p.text for p in self.output)


class ReasoningItem(_Open):
    """Accepted as history and not rendered (a foresight model's reasoning is in its turn)."""

    type: Literal["reasoning"]


def _item_kind(v: Any) -> str:
    kind = v.get("type", "message") if isinstance(v, dict) else getattr(v, "type", "message")
    return kind if isinstance(kind, str) else "message"


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")] | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")] | Annotated[ReasoningItem, Tag("reasoning")],
    Discriminator(_item_kind),
]


class FunctionTool(_Open):
    """A function the model may call (flat, unlike chat completions' ``{"function": {...}}``)."""

    type: Literal["function"]
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedFunctionChoice(BaseModel):
    type: Literal["function"]
    name: str = Field(min_length=1)


class TextFormat(_Open):
    """``text`` (free), ``json_object`` or ``json_schema`` (flat: ``name``, ``schema``, ``strict``)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class TextConfig(_Open):
    format: TextFormat | None = None


class ResponsesRequest(_Request):
    model: str | None = None
    input: str | list[InputItem] = Field(description="A user message, or a list of input items.")
    instructions: str | None = Field(default=None, description="A system message put before the input.")
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedFunctionChoice | None = None
    parallel_tool_calls: bool | None = Field(default=None, description=(
        "Accepted; a foresight turn has one action, so a response carries at most one call."))
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = Field(default=None, ge=SEED_MIN, le=SEED_MAX)
    stream: bool = False
    store: bool | None = Field(default=None, description="Nothing is stored: only false (or omitted) is served.")
    previous_response_id: str | None = Field(default=None, description="Not served (nothing is stored).")
    background: bool | None = Field(default=None, description="Not served: only false (or omitted).")
    text: TextConfig | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    ignore_eos: bool = Field(default=False, description="vLLM-compatible extension, as on chat completions.")


# --------------------------------------------------------------------------- the response


class OutputTextPart(BaseModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] = []


class OutputMessage(BaseModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    status: Literal["in_progress", "completed", "incomplete"]
    content: list[OutputTextPart]


class OutputFunctionCall(BaseModel):
    id: str
    type: Literal["function_call"] = "function_call"
    call_id: str
    name: str
    arguments: str
    status: Literal["in_progress", "completed", "incomplete"]


OutputItem = OutputMessage | OutputFunctionCall


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class ResponseUsage(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails = InputTokensDetails()
    output_tokens: int
    output_tokens_details: OutputTokensDetails = OutputTokensDetails()
    total_tokens: int


class IncompleteDetails(BaseModel):
    reason: Literal["max_output_tokens"]


class ResponseObject(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: str
    object: Literal["response"] = "response"
    created_at: int
    model: str
    status: Literal["in_progress", "completed", "incomplete"]
    output: list[OutputItem]
    parallel_tool_calls: bool
    tool_choice: Literal["auto", "none", "required"] | NamedFunctionChoice
    tools: list[FunctionTool]
    instructions: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    metadata: dict[str, str] | None = None
    text: TextConfig | None = None
    error: None = None
    incomplete_details: IncompleteDetails | None = None
    previous_response_id: None = None
    store: bool = False
    background: bool = False
    usage: ResponseUsage | None = None
    foresight: ForesightInfo | None = Field(default=None, description="With tools declared: the turn's foresight.")
