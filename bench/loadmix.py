"""A mixed load on loopback: chat, streamed chat (some clients leave early), completions and plans.

Used by ``tests/integration/test_load.py`` (bounded) and ``bench/load.py`` (full). Pure client code.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

PROMPT = "<information>x=5 target=40 steps=6</information>\n"


@dataclass
class LoadResult:
    """What one load run saw."""

    seconds: float
    codes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    missing_retry_after: int = 0
    disconnects: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return sum(self.codes.values())

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.codes.items() if code.startswith("5"))

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1]


async def _one(client: httpx.AsyncClient, url: str, model: str, kind: str, rng: random.Random,
               result: LoadResult) -> None:
    started = time.perf_counter()
    if kind == "stream":
        body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 48,
                "stream": True, "temperature": 1.0}
        leave_early = rng.random() < 0.3
        async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
            status = r.status_code
            retry = r.headers.get("retry-after")
            if status == 200:
                async for line in r.aiter_lines():
                    if leave_early and line.startswith("data:"):
                        result.disconnects += 1
                        break  # the client goes away mid-stream
            else:
                await r.aread()
    else:
        if kind == "chat":
            path, body = "/v1/chat/completions", {"model": model, "max_tokens": 48,
                                                  "messages": [{"role": "user", "content": PROMPT}]}
        elif kind == "completion":
            path, body = "/v1/completions", {"model": model, "prompt": PROMPT, "max_tokens": 48, "n": 2}
        else:
            path, body = "/v1/plan", {"prompt": PROMPT, "algorithm": "branch_commit", "width": 2,
                                      "budget": {"max_candidates": 4}}
        r = await client.post(f"{url}{path}", json=body)
        status, retry = r.status_code, r.headers.get("retry-after")
    result.codes[str(status)] += 1
    if status == 429 and not retry:
        result.missing_retry_after += 1
    if status == 200:
        result.latencies.append(time.perf_counter() - started)


async def run_load(url: str, model: str, clients: int, seconds: float, key: str | None = None,
                   seed: int = 0) -> LoadResult:
    """``clients`` concurrent clients, each sending requests back to back for ``seconds``."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    result = LoadResult(seconds)
    deadline = time.monotonic() + seconds
    kinds = ["chat", "stream", "completion", "plan"]

    async def client_loop(i: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(seed * 1000 + i)
        while time.monotonic() < deadline:
            try:
                await _one(client, url, model, rng.choice(kinds), rng, result)
            except httpx.HTTPError as exc:
                result.errors[type(exc).__name__] += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(headers=headers, timeout=120, limits=limits) as client:
        await asyncio.gather(*(client_loop(i, client) for i in range(clients)))
    return result
