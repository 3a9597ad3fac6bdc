"""Turning OpenAI requests into engine requests, and engine output into results.

Validation that needs the model (its name, its context length, the prompt's
token count) lives here; the routes stay thin.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

from engine.base import Engine, GenerationChunk, GenerationRequest, Tenancy, TokenLogprob
from engine.errors import EngineDeadError, EngineRequestError
from protocol.openai import ChatCompletionRequest, CompletionRequest, _Sampling
from server.config import Settings
from server.metrics import Metrics
from server.services.errors import DeadlineExceeded, InvalidRequest
from server.services.served_models import ServedModels
from server.services.structured import SCHEMA_PARAM, structured_output
from server.services.tools import Tools, check_messages
from server.services.usage import TokenUsage

log = logging.getLogger("foresight.generation")
SHARED = Tenancy()  # auth off, or a caller the service does not know: the shared cache, interactive


@dataclass
class SequenceResult:
    """One finished sequence of a non-streamed generation."""

    text: str = ""
    num_tokens: int = 0
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)


@dataclass
class GenerationResult:
    """All n sequences of one prompt."""

    prompt_tokens: int
    sequences: list[SequenceResult]
    cached_tokens: int = 0  # of the prompt, served by the engine's prefix cache

    @property
    def completion_tokens(self) -> int:
        return sum(s.num_tokens for s in self.sequences)


class GenerationService:
    """Validates sampling requests against the served model and runs them."""

    def __init__(self, engine: Engine, settings: Settings, metrics: Metrics | None = None,
                 on_engine_dead: Callable[[str], None] | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.models = ServedModels(engine, settings)
        self.metrics = metrics
        self.on_engine_dead = on_engine_dead or (lambda _msg: None)

    # ------------------------------------------------------------------ validation

    def check_model(self, name: str | None) -> None:
        self.models.resolve(name)

    def check_prompt_length(self, n_tokens: int, param: str) -> None:
        cap = self.settings.max_prompt_tokens
        if cap is not None and n_tokens > cap:
            raise InvalidRequest(f"the prompt has {n_tokens} tokens, above this server's limit of {cap} "
                             "(max_prompt_tokens)", param=param, code="prompt_too_long")
        limit = self.engine.info.max_model_len
        if n_tokens >= limit:
            raise InvalidRequest(f"the prompt has {n_tokens} tokens; this model's context is {limit} tokens",
                             param=param, code="context_length_exceeded")

    def _sampling(self, req: _Sampling, prompt_ids: list[int], max_tokens: int | None,
                  default_max: int | None, logprobs: int | None, tenancy: Tenancy = SHARED) -> GenerationRequest:
        served = self.models.resolve(req.model)
        if req.unknown_fields:
            log.debug("ignoring unknown request fields: %s", ", ".join(req.unknown_fields))
        if req.n > self.settings.max_n:
            raise InvalidRequest(f"n is {req.n}, above this server's limit of {self.settings.max_n}", param="n")
        limit = self.engine.info.max_model_len
        self.check_prompt_length(len(prompt_ids), "messages" if isinstance(req, ChatCompletionRequest) else "prompt")
        room = limit - len(prompt_ids)
        cap = self.settings.max_tokens_limit
        if max_tokens is not None and cap is not None and max_tokens > cap:
            raise InvalidRequest(f"max_tokens is {max_tokens}, above this server's limit of {cap} (max_tokens_limit)",
                             param="max_tokens", code="max_tokens_too_large")
        wanted = max_tokens if max_tokens is not None else (default_max or room)
        if cap is not None:
            wanted = min(wanted, cap)
        if wanted > room:
            raise InvalidRequest(
                f"max_tokens is {wanted} but the prompt ({len(prompt_ids)} tokens) leaves room for {room} "
                f"in this model's {limit}-token context",
                param="max_tokens", code="context_length_exceeded",
            )
        return GenerationRequest(
            prompt_token_ids=prompt_ids,
            n=req.n,
            max_tokens=min(wanted, room),
            temperature=1.0 if req.temperature is None else req.temperature,
            top_p=1.0 if req.top_p is None else req.top_p,
            seed=req.seed,
            stop=req.stop_list,
            logprobs=logprobs,
            ignore_eos=req.ignore_eos,
            min_tokens=min(req.min_tokens, wanted),
            adapter=self.models.adapter(served),
            cache_salt=tenancy.cache_salt,
            priority=tenancy.priority,
        )

    def prepare_chat(self, req: ChatCompletionRequest, tools: Tools | None = None,
                     tenancy: Tenancy = SHARED) -> GenerationRequest:
        """The engine request of a chat; ``tools``: the request's declared tools (:meth:`Tools.of`); ``tenancy``:
        the caller's app's prefix-cache salt and its class's priority (:func:`server.guards.tenancy`)."""
        self.check_model(req.model)
        check_messages(req.messages)
        try:
            ids = self.engine.render_chat([m.as_template_dict() for m in req.messages],
                                          tools.template_tools(req) if tools else None,
                                          continue_final=req.continue_final_message,
                                          generation_prompt=req.add_generation_prompt)
        except EngineRequestError as exc:
            raise InvalidRequest(str(exc), param="messages") from exc
        logprobs = (req.top_logprobs or 0) if req.logprobs else None
        if req.top_logprobs and not req.logprobs:
            raise InvalidRequest("top_logprobs needs logprobs: true", param="top_logprobs")
        greq = self._sampling(req, ids, req.wanted_max_tokens, None, logprobs, tenancy)
        structured = structured_output(req.response_format)
        required = tools.required_call(greq.max_tokens) if tools else None
        if required is not None and structured is not None:
            raise InvalidRequest("response_format cannot be combined with a required or named tool_choice: "
                             "one turn takes one constraint", param="response_format")
        structured = structured or required
        if structured is None:
            return greq
        greq = dataclasses.replace(greq, structured=structured)
        try:
            self.engine.check_request(greq)
        except EngineRequestError as exc:
            raise InvalidRequest(str(exc), param="tools" if required is not None else SCHEMA_PARAM) from exc
        return greq

    def prepare_completion(self, req: CompletionRequest, tenancy: Tenancy = SHARED) -> list[GenerationRequest]:
        self.check_model(req.model)
        prompts: list[list[int]]
        if isinstance(req.prompt, str):
            prompts = [self.engine.encode(req.prompt)]
        elif all(isinstance(p, int) for p in req.prompt):
            vocab_ok = all(isinstance(p, int) and p >= 0 for p in req.prompt)
            if not vocab_ok:
                raise InvalidRequest("token ids must be non-negative integers", param="prompt")
            prompts = [list(req.prompt)]  # type: ignore[arg-type]
        else:
            prompts = [self.engine.encode(str(p)) for p in req.prompt]
        return [self._sampling(req, ids, req.max_tokens, 16, req.logprobs, tenancy) for ids in prompts]

    # ------------------------------------------------------------------ running

    async def stream(self, greq: GenerationRequest, request_id: str,
                     usage: TokenUsage | None = None) -> AsyncGenerator[GenerationChunk, None]:
        """Engine chunks; the generation is aborted if the consumer stops early. The tokens it spent are
        added to ``usage`` as they are generated, and its prompt (and how much of it the prefix cache served)
        once it ends, however it ends: the request's one count, which the route's usage dependency charges."""
        started = time.perf_counter()
        deadline = asyncio.get_running_loop().time() + self.settings.request_timeout_s
        first = True
        finished = False
        cached = 0
        chunks = aiter(self.engine.generate(greq, request_id))
        try:
            while True:
                # asyncio.timeout_at, not wait_for: on Python 3.11 wait_for returns the chunk instead of
                # raising when a cancel (the client left) lands just as a chunk arrives, and the request then
                # ran to its end. The deadline covers awaiting the engine only, never the consumer (the yield).
                timeout = asyncio.timeout_at(deadline)
                try:
                    async with timeout:
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                except TimeoutError as exc:
                    if not timeout.expired():
                        raise
                    raise DeadlineExceeded(f"the request ran past its deadline of {self.settings.request_timeout_s} s "
                                         "(request_timeout_s); its generation was aborted") from exc
                if first and any(d.num_tokens for d in chunk.deltas):
                    first = False
                    if self.metrics:
                        self.metrics.ttft.observe(time.perf_counter() - started)
                if usage is not None:
                    usage.completion_tokens += sum(d.num_tokens for d in chunk.deltas)
                cached = chunk.cached_tokens if chunk.cached_tokens is not None else cached
                finished = chunk.finished
                yield chunk
        except EngineDeadError as exc:
            self.on_engine_dead(str(exc))
            raise
        finally:
            if usage is not None:
                usage.prompt_tokens += len(greq.prompt_token_ids)
                usage.cached_tokens += cached
            if not finished:
                await asyncio.shield(self.engine.abort(request_id))

    async def collect(self, greq: GenerationRequest, request_id: str,
                      usage: TokenUsage | None = None) -> GenerationResult:
        """Run to the end (aborted on the engine if the caller is cancelled first: a client that left)."""
        result = GenerationResult(len(greq.prompt_token_ids), [SequenceResult() for _ in range(greq.n)])
        async for chunk in self.stream(greq, request_id, usage):
            result.prompt_tokens = chunk.prompt_tokens
            if chunk.cached_tokens is not None:
                result.cached_tokens = chunk.cached_tokens
            for d in chunk.deltas:
                seq = result.sequences[d.index]
                seq.text += d.text
                seq.num_tokens += d.num_tokens
                seq.token_ids.extend(d.token_ids)
                if d.logprobs:
                    seq.logprobs.extend(d.logprobs)
                if d.finish_reason is not None:
                    seq.finish_reason = d.finish_reason
        return result
