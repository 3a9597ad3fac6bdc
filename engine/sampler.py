"""The engine behind the planner's :class:`planner.search.Sampler` protocol.

The one place where engine and planner meet: the server plans through it, and so
do the reference evaluation, quantization's evaluation and the benches.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from engine.base import Engine, GenerationRequest
from planner.search import Sample, SampleBatch

Run = Callable[[GenerationRequest, str], Awaitable[SampleBatch]]
"""How one engine request runs to its end: the server passes one that meters, times out and aborts."""


async def collect(engine: Engine, request: GenerationRequest, request_id: str) -> SampleBatch:
    """Run ``request`` to its end on ``engine``; aborted there if the caller is cancelled first."""
    texts = [""] * request.n
    tokens = [0] * request.n
    ids: list[list[int]] = [[] for _ in range(request.n)]
    reasons: list[str | None] = [None] * request.n
    prompt_tokens = len(request.prompt_token_ids)
    cached = 0
    finished = False
    try:
        async for chunk in engine.generate(request, request_id):
            prompt_tokens = chunk.prompt_tokens
            cached = chunk.cached_tokens if chunk.cached_tokens is not None else cached
            for d in chunk.deltas:
                texts[d.index] += d.text
                tokens[d.index] += d.num_tokens
                ids[d.index].extend(d.token_ids)
                if d.finish_reason is not None:
                    reasons[d.index] = d.finish_reason
            finished = chunk.finished
    finally:
        if not finished:  # shielded: a cancelled caller still aborts its request
            await asyncio.shield(engine.abort(request_id))
    samples = [Sample(t, k, r, tuple(i) if len(i) == k else ())
               for t, k, r, i in zip(texts, tokens, reasons, ids, strict=True)]
    return SampleBatch(samples, prompt_tokens, cached)


KNOWN_PROMPTS = 256  # texts whose token ids a sampler remembers (a plan's prompts and samples)
TAIL_TOKENS = 4  # how many of a sample's last tokens may be given up to match its text


@dataclass
class EngineSampler:
    """Samples n continuations of one prompt in one engine call; stop strings stay in the output.

    ``add_special_tokens``: False for a prompt the chat template rendered (it has its own BOS).
    ``run``: how a request runs (default: straight on the engine, see :func:`collect`).

    A prompt that extends an earlier prompt and one of its samples (a committed span continued, a
    lookahead's imagined observation) is sent as the token ids the engine saw and generated, not as
    its text encoded again: a text's encoding may differ from the tokens a model wrote, and the
    prefix cache only serves identical tokens.
    """

    engine: Engine
    add_special_tokens: bool = True
    run: Run | None = None
    _known: dict[str, list[int]] = field(default_factory=dict, repr=False)

    async def sample(self, prompt: str, n: int, *, stop: Sequence[str], max_tokens: int, temperature: float,
                     top_p: float = 1.0, seed: int | None = None) -> SampleBatch:
        ids = self.token_ids(prompt)
        room = self.engine.info.max_model_len - len(ids)
        if room < 1:
            return SampleBatch([Sample("", 0, "length") for _ in range(n)], len(ids))
        request = GenerationRequest(ids, n=n, max_tokens=min(max_tokens, room), temperature=temperature, top_p=top_p,
                                    seed=seed, stop=tuple(stop), include_stop_str_in_output=True)
        request_id = f"plan-{uuid.uuid4().hex}"
        if self.run is not None:
            batch = await self.run(request, request_id)
        else:
            batch = await collect(self.engine, request, request_id)
        self._remember_samples(prompt, ids, batch)
        return batch

    def token_ids(self, prompt: str) -> list[int]:
        """The prompt's token ids: remembered, or a remembered text's ids and the rest encoded, or encoded."""
        if (known := self._known.get(prompt)) is not None:
            self._known[prompt] = self._known.pop(prompt)  # recently used: the last to go
            return known
        base = max((k for k in self._known if prompt.startswith(k)), key=len, default=None)
        extended = None if base is None else self._extend(self._known[base], prompt[len(base):])
        ids = extended if extended is not None else self.engine.encode(prompt,
                                                                         add_special_tokens=self.add_special_tokens)
        self._remember(prompt, ids)
        return ids

    def _extend(self, ids: list[int], rest: str) -> list[int] | None:
        """``ids`` and ``rest`` encoded after them, where that decodes to their texts joined (a tokenizer
        that starts every encoding with a space marker, as SentencePiece's, would add one): else None."""
        if not rest:
            return list(ids)
        more = self.engine.encode(rest, add_special_tokens=False)
        return ids + more if self.engine.decode(ids + more) == self.engine.decode(ids) + rest else None

    def _remember_samples(self, prompt: str, ids: list[int], batch: SampleBatch) -> None:
        """Each sample's prompt + text as the ids it was generated as, as far as they decode to that text,
        and the rest of the text encoded: a stop string may end inside a token, and a character split
        across tokens may be cut at the end. Special tokens are in the ids and not in the text (as the
        engine shows it); those at the end (an end of sequence) are left out."""
        head: str | None = None
        for s in batch.samples:
            gen = list(s.token_ids)
            while gen and not self.engine.decode(gen[-1:]):
                gen.pop()
            if not gen:
                continue
            head = self.engine.decode(ids) if head is None else head
            whole = head + s.text
            for end in range(len(gen), max(len(gen) - TAIL_TOKENS, 0) - 1, -1):
                kept = ids + gen[:end]
                decoded = self.engine.decode(kept)
                if whole.startswith(decoded) and len(decoded) >= len(head):
                    extended = self._extend(kept, whole[len(decoded):])
                    if extended is not None:
                        self._remember(prompt + s.text, extended)
                    break

    def _remember(self, text: str, ids: list[int]) -> None:
        if text not in self._known and len(self._known) >= KNOWN_PROMPTS:  # the oldest goes
            del self._known[next(iter(self._known))]
        self._known[text] = ids


@asynccontextmanager
async def local_sampler(model: str | Path, dtype: str = "float32") -> AsyncIterator[EngineSampler]:
    """The planner's sampler over a vLLM engine loaded here on ``model`` (benches, offline evaluation),
    closed on leaving."""
    from engine import open_engine

    async with open_engine(model, dtype=dtype, log_stats=False) as engine:
        yield EngineSampler(engine)
