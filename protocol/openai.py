"""OpenAI-compatible request and response models (the subset we serve).

Requests accept unknown fields (OpenAI clients send extras) and the server logs
them; wrong types and out-of-range values are 400s naming the field.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# a 64-bit signed seed: the engine's generators take no wider one (a wider one failed the request
# inside the engine, a 500)
from planner.params import SEED_MAX, SEED_MIN


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")

    @property
    def unknown_fields(self) -> list[str]:
        return sorted((self.model_extra or {}).keys())


class StreamOptions(BaseModel):
    include_usage: bool = False


class _Sampling(_Request):
    model: str | None = None
    n: int = Field(default=1, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=SEED_MIN, le=SEED_MAX)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    # vLLM-compatible extensions
    ignore_eos: bool = False
    min_tokens: int = Field(default=0, ge=0)

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and any(not s for s in v):
            raise ValueError("stop strings must not be empty")
        if v == "":
            raise ValueError("stop strings must not be empty")
        return v

    @property
    def stop_list(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class ToolCallFunction(BaseModel):
    name: str
    arguments: str = Field(description="The arguments as a JSON string, as OpenAI sends them.")


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: ToolCallFunction


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One message of a chat. An ``assistant`` message may carry the ``tool_calls`` it made; a ``tool``
    message answers one of them (``tool_call_id``)."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def as_template_dict(self) -> dict[str, Any]:
        """The message as chat templates take it. A call's arguments become an object when they are JSON
        (templates write them with ``tojson``, as Hugging Face's tool-use convention asks); the content is
        passed on as it is."""
        content: Any = self.content or ""
        if isinstance(self.content, list):
            content = "".join(p.text for p in self.content)
        role = "system" if self.role == "developer" else self.role
        out: dict[str, Any] = {"role": role, "content": content}
        if self.name is not None:
            out["name"] = self.name
        if self.tool_calls:
            out["tool_calls"] = [{"id": c.id, "type": c.type, "function": {
                "name": c.function.name, "arguments": _json_or_text(c.function.arguments)}} for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


def _json_or_text(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to read: passed on as text
        return arguments


class JsonSchemaFormat(BaseModel):
    """``response_format.json_schema``: the schema the answer must satisfy."""

    model_config = ConfigDict(populate_by_name=True)
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema", description="A JSON Schema.")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    """``text`` (free), ``json_object`` (any JSON object) or ``json_schema`` (one that satisfies the schema)."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("json_schema is required when type is 'json_schema'")
        return self


class FunctionDef(BaseModel):
    """A function the model may call: its name, what it does, its parameters as JSON Schema."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


class ToolDef(BaseModel):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(BaseModel):
    name: str = Field(min_length=1)


class NamedToolChoice(BaseModel):
    """``{"type": "function", "function": {"name": ...}}``: this function must be called."""

    type: Literal["function"]
    function: NamedFunction


class ToolFields(BaseModel):
    """``tools``, ``tool_choice`` and ``parallel_tool_calls``, shared by chat completions and plans."""

    tools: list[ToolDef] | None = Field(default=None, description=(
        "Functions the model may call (JSON Schema `parameters`); the turn's action comes back as `tool_calls`."))
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = Field(default=None, description=(
        "`auto` (the default with tools), `none`, `required`, or one named function."))
    parallel_tool_calls: bool | None = Field(default=None, description=(
        "Accepted; a foresight turn has one action, so a choice carries at most one call."))

    @model_validator(mode="after")
    def _tools_agree(self) -> ToolFields:
        names = [t.function.name for t in self.tools or []]
        if len(set(names)) != len(names):
            raise ValueError("tools: two tools have the same name")
        if self.tool_choice is not None and not names and self.tool_choice != "none":
            raise ValueError("tool_choice needs tools")
        if isinstance(self.tool_choice, NamedToolChoice) and self.tool_choice.function.name not in names:
            raise ValueError(f"tool_choice names {self.tool_choice.function.name!r}, which is not among the tools")
        return self


class ChatCompletionRequest(_Sampling, ToolFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    add_generation_prompt: bool = Field(default=True, description=(
        "vLLM's extension: begin the assistant's turn after the messages (false: the template's text alone, as "
        "with continue_final_message)."))
    continue_final_message: bool = Field(default=False, description=(
        "vLLM's extension: the last message, the assistant's, is continued where it stops instead of a new turn "
        "(a prefill); needs add_generation_prompt false."))

    @model_validator(mode="after")
    def _continuation(self) -> ChatCompletionRequest:
        if self.continue_final_message and self.add_generation_prompt:
            raise ValueError("continue_final_message needs add_generation_prompt: false (a turn is either "
                             "continued or begun)")
        if self.continue_final_message and self.messages[-1].role != "assistant":
            raise ValueError("continue_final_message continues the last message, which must be the assistant's")
        return self

    @property
    def wanted_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_Sampling):
    prompt: str | list[str] | list[int]
    logprobs: int | None = Field(default=None, ge=0, le=20)
    echo: bool = False

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str | list[str] | list[int]) -> str | list[str] | list[int]:
        if isinstance(v, list) and not v:
            raise ValueError("prompt must not be empty")
        return v


# --------------------------------------------------------------------------- responses


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


class CachedTokensDetails(BaseModel):
    cached_tokens: int = Field(default=0, description="Prompt tokens served by the prefix cache.")


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: CachedTokensDetails = Field(default_factory=CachedTokensDetails)


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class ChatTokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob] = []


class ChatLogprobs(BaseModel):
    content: list[ChatTokenLogprob] | None = None


class ForesightProblem(BaseModel):
    kind: str
    detail: str


class ForesightInfo(BaseModel):
    """The turn's foresight, beside the OpenAI fields (standard clients ignore it)."""

    rollout: str | None = Field(description="What the model imagined would happen (its <imaginary> span).")
    confidence: float | None = Field(description="Its verbalized chance of success, in [0, 1].")
    problems: list[ForesightProblem] = Field(description="What was off-format, or why a call was not passed on.")


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = None


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str | None
    logprobs: ChatLogprobs | None = None
    foresight: ForesightInfo | None = Field(default=None, description="With tools declared: the turn's foresight.")


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class CompletionLogprobs(BaseModel):
    tokens: list[str] = []
    token_logprobs: list[float | None] = []
    top_logprobs: list[dict[str, float] | None] = []
    text_offset: list[int] = []


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: str | None
    logprobs: CompletionLogprobs | None = None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "foresight-serve"
    root: str
    parent: str | None = Field(default=None, description="For a LoRA adapter: the base it runs on (as vLLM says).")
    max_model_len: int
    quantization: str | None = None
    dtype: str | None = None
    default: bool = Field(default=False, description="Whether a request without `model` runs on this one.")
    planner: dict[str, Any] | None = Field(default=None, description=(
        "What `/v1/plan` on this model does with what a request leaves out: `algorithm` (when none is named), "
        "each algorithm's default parameters (`algorithms`), and the model's `planner.json` they came from "
        "(`source`; null: the measured defaults alone)."))


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str | int | None = None
    param: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
