"""The narrow engine interface the server and planner run on.

Generate (with n, stop strings, max_tokens, temperature, top_p, seed, logprobs),
stream deltas, abort, check health, describe the model, and the two tokenizer
operations the API needs. One real adapter (:mod:`engine.vllm`) and one scripted
engine for unit tests implement it; both are async context managers (started on
entry, closed on exit) through :class:`EngineLifecycle`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable


@dataclass(frozen=True)
class StructuredOutput:
    """Constrain what is generated: to a JSON schema, to any JSON object, or to an xgrammar structural tag
    (free text, then one of some tags whose bodies are constrained: a required tool call)."""

    json_schema: dict[str, Any] | None = None
    json_object: bool = False
    structural_tag: dict[str, Any] | None = None


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate from one tokenized prompt."""

    prompt_token_ids: list[int]
    n: int = 1
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: int | None = None
    include_stop_str_in_output: bool = False
    ignore_eos: bool = False
    min_tokens: int = 0
    structured: StructuredOutput | None = None
    adapter: str | None = None  # a loaded LoRA adapter's name (None: the base alone)
    # only requests with the same salt share prefix-cache blocks (vLLM's cache_salt; None: the shared cache)
    cache_salt: str | None = None
    priority: int = 0  # lower runs first (vLLM's priority scheduling; 0: interactive)


@dataclass(frozen=True)
class Tenancy:
    """Whose a request is, as every engine call of it says so: its app's prefix-cache salt and its class's
    engine priority (:func:`server.guards.tenancy` makes it from the caller's key)."""

    cache_salt: str | None = None
    priority: int = 0


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token's log probability and its top alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass
class SequenceDelta:
    """New output of one of the n sequences since the previous chunk."""

    index: int
    text: str
    num_tokens: int
    finish_reason: str | None = None
    stop_reason: str | int | None = None
    logprobs: list[TokenLogprob] | None = None
    token_ids: tuple[int, ...] = ()  # the new tokens themselves (empty: not said)


@dataclass
class GenerationChunk:
    """One step of a streamed generation."""

    prompt_tokens: int
    deltas: list[SequenceDelta] = field(default_factory=list)
    finished: bool = False
    cached_tokens: int | None = None  # prompt tokens the engine's prefix cache served (None: not said)


@dataclass(frozen=True)
class ModelInfo:
    """What is being served."""

    name: str
    path: str
    max_model_len: int
    dtype: str
    quantization: str | None = None
    device: str = "cpu"
    kv_cache_tokens: int | None = None  # the KV cache the engine allocated, in tokens (None: unknown)


@runtime_checkable
class Engine(Protocol):
    """An inference engine: one per process."""

    @property
    def info(self) -> ModelInfo: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None: ...

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str:
        """Token ids as text, the way generated texts show them (special tokens left out)."""

    def render_chat(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None,
                    *, continue_final: bool = False, generation_prompt: bool = True) -> list[int]:
        """The chat template's prompt as token ids (``tools``: OpenAI tool definitions, for templates that use
        them): every chat, response and plan is rendered once, here. ``continue_final``: the last message (the
        assistant's) is left open for the model to continue, no new turn begun (vLLM's
        ``continue_final_message``); ``generation_prompt`` False: no new turn begun either."""
        ...

    def check_request(self, request: GenerationRequest) -> None:
        """Raise :class:`engine.errors.EngineRequestError` for a request this engine cannot run (e.g. a
        structured output its grammar backend cannot compile), before any of it is sent."""
        ...

    def generate(self, request: GenerationRequest, request_id: str) -> AsyncIterator[GenerationChunk]: ...

    async def abort(self, request_id: str) -> None: ...

    async def check_health(self) -> None: ...

    def num_unfinished(self) -> int: ...

    def adapters(self) -> dict[str, str]:
        """The LoRA adapters loaded beside the base: name → path."""
        ...

    async def load_adapter(self, name: str, path: str) -> None:
        """Load a LoRA adapter under ``name`` (:class:`engine.errors.EngineRequestError` if the engine cannot
        take it: LoRA not enabled, a rank above the engine's, files vLLM refuses)."""
        ...

    async def unload_adapter(self, name: str) -> None: ...


class EngineLifecycle:
    """Mixin: ``async with engine:`` starts it and always closes it, so no caller copies try/finally."""

    async def start(self) -> None:  # pragma: no cover - implemented by the adapters
        raise NotImplementedError

    async def close(self) -> None:  # pragma: no cover - implemented by the adapters
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
