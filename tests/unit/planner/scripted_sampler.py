"""A scripted sampler: deterministic texts by prompt, exact token accounting (1 token per character)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from planner.search import Sample, SampleBatch, TextSampler

Script = Callable[[str, int, int], str]  # (prompt, call number, sample index) -> text


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, str]:
    best = None
    for s in stop:
        i = text.find(s)
        if i >= 0 and (best is None or i + len(s) < best):
            best = i + len(s)
    if best is None:
        return text, "length"
    return text[:best], "stop"


@dataclass
class ScriptedSampler(TextSampler):
    """Answers every call from ``script``; stop strings are kept in the output, as the server does."""

    script: Script
    calls: list[tuple[str, int, int, tuple[str, ...]]] = field(default_factory=list)
    seeds: list[int | None] = field(default_factory=list)
    delay_s: float = 0.0
    cache_block: int = 0  # > 0: report cached prompt tokens as a prefix cache of such blocks would
    seen: list[str] = field(default_factory=list)  # prompts and prompt + output, as an engine caches them

    async def sample(self, prompt: str, n: int, *, stop: Sequence[str], max_tokens: int, temperature: float,
                     top_p: float = 1.0, seed: int | None = None) -> SampleBatch:
        call = len(self.calls)
        self.calls.append((prompt, n, max_tokens, tuple(stop)))
        self.seeds.append(seed)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        out = []
        for i in range(n):
            raw = continuation(prompt) if prompt.endswith("</confidence>") else self.script(prompt, call, i)
            text, finish = cut_at_stop(raw, stop)
            if len(text) > max_tokens:
                text, finish = text[:max_tokens], "length"
            out.append(Sample(text, len(text), finish))
        cached = self._cached(prompt)
        self.seen.extend([prompt, *(prompt + s.text for s in out)])
        return SampleBatch(out, prompt_tokens=len(prompt), cached_tokens=cached)

    def _cached(self, prompt: str) -> int:
        """Whole blocks of ``prompt`` that an earlier call's prompt or output began with (never its last
        token: an engine computes at least one)."""
        if not self.cache_block:
            return 0
        best = min(max((len(_common(prompt, s)) for s in self.seen), default=0), len(prompt) - 1)
        return best // self.cache_block * self.cache_block


def _common(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def continuation(prompt: str) -> str:
    """The policy span that follows a world-model span written by :func:`turn`."""
    op = prompt.rsplit("<imaginary>plan ", 1)[-1].split("</imaginary>", 1)[0]
    return f"\n<think>t</think>\n<answer>{op}</answer>"


def turn(conf: int, op: str = "a") -> str:
    return (f"<imaginary>plan {op}</imaginary>\n<confidence>{conf}%</confidence>\n"
            f"<think>t</think>\n<answer>{op}</answer>")


def by_index(confs: list[int]) -> Script:
    """Sample i of every call says confidence confs[i % len]."""
    return lambda prompt, call, i: turn(confs[i % len(confs)], op=f"op{i % len(confs)}")
