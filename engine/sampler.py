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

from engine.base import Engine, GenerationRequest, StructuredOutput, Tenancy
from planner.format import ACTION_STOPS
from planner.search import Sample, SampleBatch

Run = Callable[[GenerationRequest, str], Awaitable[SampleBatch]]
"""How one engine request runs to its end: the server passes one that meters, times out and aborts."""
Constraint = Callable[[int], StructuredOutput | None]
"""What constrains decoding of a call that ends a turn in its action, given the call's ``max_tokens``."""


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


TAIL_TOKENS = 4  # how many of a sample's last tokens may be given up where its text stops inside them


@dataclass(frozen=True)
class TokenPrompt:
    """A prompt as the engine sees it: token ids (the planner's opaque :data:`planner.search.Context`)."""

    ids: tuple[int, ...]


@dataclass
class EngineSampler:
    """Samples n continuations of one prompt in one engine call; stop strings stay in the output.

    Prompts are token ids (:class:`TokenPrompt`): rendered once by the caller (:meth:`prompt`, or
    :meth:`start` for a text), and extended by the planner with the ids the engine wrote
    (:meth:`extend`): a text's encoding may differ from the tokens a model wrote, and the prefix cache
    only serves identical tokens. Only text the planner adds itself (a lookahead's observation tags) is
    encoded, on its own, and joined on.

    ``add_special_tokens``: whether :meth:`start` adds the tokenizer's own (a BOS): True for a plain
    prompt, False for one a chat template rendered (it has its own).
    ``run``: how a request runs (default: straight on the engine, see :func:`collect`).
    ``constrain_action``: for the calls that end a turn in its action (those that stop at the action tags),
    the decoding constraint (a required tool call: :meth:`server.services.tools.Tools.required_call`).
    ``adapter``: the LoRA adapter every request runs on (None: the base).
    """

    engine: Engine
    add_special_tokens: bool = True
    run: Run | None = None
    constrain_action: Constraint | None = None
    adapter: str | None = None
    tenancy: Tenancy = field(default_factory=Tenancy)  # every request's salt and priority (its app's, class's)

    @staticmethod
    def prompt(ids: Sequence[int]) -> TokenPrompt:
        """A prompt already rendered to token ids (a chat template's, or the caller's own)."""
        return TokenPrompt(tuple(ids))

    def start(self, text: str) -> TokenPrompt:
        return TokenPrompt(tuple(self.engine.encode(text, add_special_tokens=self.add_special_tokens)))

    def extend(self, context: TokenPrompt, sample: Sample | None = None, text: str = "") -> TokenPrompt:
        """``context``, then the tokens the engine wrote for ``sample`` (:meth:`written`), then ``text``
        encoded on its own."""
        ids = list(context.ids)
        if sample is not None:
            ids += self.written(sample)
        if text:
            ids += self._piece(text)
        return TokenPrompt(tuple(ids))

    def carry(self, context: TokenPrompt, sample: Sample) -> tuple[TokenPrompt, str]:
        """``context`` and every token the engine wrote for ``sample`` but a special one it ended on, with the
        text they show past ``sample.text`` (a stop string cut inside a token leaves that token's rest). Tokens
        that were not said, or do not show the text, fall back to :meth:`extend` (nothing carried)."""
        gen = list(sample.token_ids)
        while gen and not self.engine.decode(gen[-1:]):
            gen.pop()
        shown = self.engine.decode(gen) if gen else ""
        if not gen or not shown.startswith(sample.text):
            return self.extend(context, sample), ""
        return TokenPrompt((*context.ids, *gen)), shown[len(sample.text):]

    def written(self, sample: Sample) -> list[int]:
        """The tokens the engine wrote for ``sample``, as far as they show its text. Special tokens it ended on
        (an end of sequence, which the text does not show either) are left out; so are the last few tokens
        where the text stops before their end (a stop string that ends inside a token: vLLM cuts the text, not
        the tokens), and that rest of the text is encoded on its own. A sample whose tokens were not said,
        or do not decode to its text, is its text encoded."""
        gen = list(sample.token_ids)
        while gen and not self.engine.decode(gen[-1:]):
            gen.pop()
        for _ in range(TAIL_TOKENS + 1):
            if not gen:
                break
            shown = self.engine.decode(gen)
            if sample.text.startswith(shown):
                return gen + self._piece(sample.text[len(shown):])
            gen.pop()
        return self._piece(sample.text)

    def _piece(self, text: str) -> list[int]:
        """``text`` encoded to be joined on: a tokenizer that starts every encoding with a space marker (as
        SentencePiece's) would add one, which is dropped where it is a token of its own."""
        if not text:
            return []
        ids = self.engine.encode(text, add_special_tokens=False)
        if ids and self.engine.decode(ids) != text and self.engine.decode(ids[1:]) == text:
            return ids[1:]
        return ids

    async def sample(self, context: TokenPrompt, n: int, *, stop: Sequence[str], max_tokens: int,
                     temperature: float, top_p: float = 1.0, seed: int | None = None) -> SampleBatch:
        ids = list(context.ids)
        room = self.engine.info.max_model_len - len(ids)
        if room < 1:
            return SampleBatch([Sample("", 0, "length") for _ in range(n)], len(ids))
        max_tokens = min(max_tokens, room)
        ends_in_action = set(stop) == set(ACTION_STOPS)
        constrain = self.constrain_action if ends_in_action else None
        request = GenerationRequest(ids, n=n, max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                                    seed=seed, stop=tuple(stop), include_stop_str_in_output=True,
                                    structured=constrain(max_tokens) if constrain is not None else None,
                                    adapter=self.adapter, cache_salt=self.tenancy.cache_salt,
                                    priority=self.tenancy.priority)
        request_id = f"plan-{uuid.uuid4().hex}"
        if self.run is not None:
            return await self.run(request, request_id)
        return await collect(self.engine, request, request_id)


@asynccontextmanager
async def local_sampler(model: str | Path, dtype: str = "float32") -> AsyncIterator[EngineSampler]:
    """The planner's sampler over a vLLM engine loaded here on ``model`` (benches, offline evaluation),
    closed on leaving."""
    from engine import open_engine

    async with open_engine(model, dtype=dtype, log_stats=False) as engine:
        yield EngineSampler(engine)
