"""A scripted engine for unit tests only (never the default).

Tokens are characters. A ``script`` maps the prompt text (and the sample's
index) to the completion; stop strings, max_tokens and n behave as in vLLM.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from engine.base import EngineLifecycle, GenerationChunk, GenerationRequest, ModelInfo, SequenceDelta, TokenLogprob
from engine.errors import EngineDeadError, EngineRequestError

Script = Callable[[str, int, GenerationRequest], str]


def echo_script(prompt: str, index: int, request: GenerationRequest) -> str:
    return f"echo {index}: {prompt[-20:]}"


class ScriptedEngine(EngineLifecycle):
    """Deterministic, in-process engine for tests; tokens are characters."""

    def __init__(
        self,
        script: Script = echo_script,
        *,
        name: str = "scripted",
        max_model_len: int = 512,
        delay_s: float = 0.0,
        start_delay_s: float = 0.0,
        cache_block: int = 0,
        path: str | None = None,
    ) -> None:
        self.script = script
        self.cache_block = cache_block  # > 0: report cached prompt tokens as a prefix cache of such blocks
        # prompts and prompt + outputs, as a prefix cache keeps them: per cache salt (only the same salt shares)
        self._seen: dict[str | None, list[str]] = {}
        self.delay_s = delay_s
        self.start_delay_s = start_delay_s
        self._info = ModelInfo(name=name, path=path or f"/scripted/{name}", max_model_len=max_model_len, dtype="none")
        self.running: set[str] = set()
        self.aborted: list[str] = []
        self.requests: list[GenerationRequest] = []
        self.dead = False
        self.started = False
        self.loaded: dict[str, str] = {}  # adapters: name -> path (the script sees request.adapter)

    @property
    def info(self) -> ModelInfo:
        return self._info

    async def start(self) -> None:
        await asyncio.sleep(self.start_delay_s)
        self.started = True

    async def close(self) -> None:
        self.started = False

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(chr(i) for i in ids)

    def _chat_text(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None,
                   continue_final: bool = False, generation_prompt: bool = True) -> str:
        parts = [f"tools: {', '.join(t['function']['name'] for t in tools)}\n"] if tools else []
        for m in messages:
            content = m.get("content") or ""
            if not isinstance(content, str):
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            calls = "".join(f" call {c['function']['name']} {json.dumps(c['function']['arguments'])}"
                            for c in m.get("tool_calls") or [])
            answers = f" (to {m['tool_call_id']})" if m.get("tool_call_id") else ""
            parts.append(f"{m['role']}{answers}: {content}{calls}\n")
        if continue_final:  # the last message left open, as a template's continue_final_message leaves it
            return "".join(parts)[:-1]
        return "".join(parts) + ("assistant: " if generation_prompt else "")

    def render_chat(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None,
                    *, continue_final: bool = False, generation_prompt: bool = True) -> list[int]:
        return self.encode(self._chat_text(messages, tools, continue_final, generation_prompt))

    def _complete(self, prompt: str, index: int, request: GenerationRequest) -> tuple[str, str, str | None]:
        """(text, finish_reason, stop_reason) as vLLM would give them: the earliest stop string within
        max_tokens ends the text with "stop"; else max_tokens ends it with "length" ("stop" if it fit)."""
        text = self.script(prompt, index, request)
        hits = [(pos, s) for s in request.stop if (pos := text.find(s)) >= 0]
        if hits:
            pos, stop = min(hits)
            if pos + len(stop) <= request.max_tokens:
                end = pos + (len(stop) if request.include_stop_str_in_output else 0)
                return text[:end], "stop", stop
        finish = "length" if len(text) > request.max_tokens else "stop"
        return text[: request.max_tokens], finish, None

    async def generate(self, request: GenerationRequest, request_id: str) -> AsyncIterator[GenerationChunk]:
        if self.dead:
            raise EngineDeadError("scripted engine is dead")
        if request.adapter is not None and request.adapter not in self.loaded:
            raise EngineRequestError(f"no adapter named {request.adapter!r} is loaded")
        self.requests.append(request)
        self.running.add(request_id)
        prompt = self.decode(request.prompt_token_ids)
        outs = [self._complete(prompt, i, request) for i in range(request.n)]
        cached = self._cached(prompt, request.cache_salt)
        if self.cache_block:
            self._seen.setdefault(request.cache_salt, []).extend([prompt, *(prompt + text for text, _, _ in outs)])
        try:
            longest = max((len(t) for t, _, _ in outs), default=0)
            for pos in range(max(longest, 1)):
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                else:
                    await asyncio.sleep(0)
                if self.dead:
                    raise EngineDeadError("scripted engine died")
                deltas = []
                for i, (text, finish, stop_reason) in enumerate(outs):
                    if pos >= len(text) and not (pos == 0 and not text):
                        continue
                    piece = text[pos : pos + 1]
                    last = pos >= len(text) - 1
                    lp = None
                    if request.logprobs is not None:
                        lp = [TokenLogprob(piece, -0.5, ((piece, -0.5),) * max(request.logprobs, 1))]
                    deltas.append(
                        SequenceDelta(i, piece, len(piece), finish if last else None,
                                      stop_reason if last else None, lp, tuple(self.encode(piece)))
                    )
                yield GenerationChunk(len(request.prompt_token_ids), deltas, finished=pos >= longest - 1,
                                      cached_tokens=cached if self.cache_block else None)
        finally:
            self.running.discard(request_id)

    def _cached(self, prompt: str, salt: str | None = None) -> int:
        """Whole blocks of ``prompt`` an earlier prompt or output of the same cache salt began with (never the
        last token: an engine computes at least one)."""
        if not self.cache_block:
            return 0
        best = max((next((i for i, (a, b) in enumerate(zip(prompt, s, strict=False)) if a != b), min(len(prompt),
                                                                                                     len(s)))
                    for s in self._seen.get(salt, [])), default=0)
        return min(best, len(prompt) - 1) // self.cache_block * self.cache_block

    def check_request(self, request: GenerationRequest) -> None:
        """Every request is runnable here (no grammar backend)."""

    def adapters(self) -> dict[str, str]:
        return dict(self.loaded)

    async def load_adapter(self, name: str, path: str) -> None:
        if name in self.loaded:
            raise EngineRequestError(f"an adapter named {name!r} is loaded already")
        self.loaded[name] = path

    async def unload_adapter(self, name: str) -> None:
        if self.loaded.pop(name, None) is None:
            raise EngineRequestError(f"no adapter named {name!r} is loaded")

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)
        self.running.discard(request_id)

    async def check_health(self) -> None:
        if self.dead:
            raise EngineDeadError("scripted engine is dead")

    def num_unfinished(self) -> int:
        return len(self.running)
