"""Usage and cost per app — per key, day and model (the base or the adapter a request ran on): requests, prompt
and generated tokens, plans, outcomes, and the replica's cost of ownership attributed by each row's share of the
tokens.

Counts gather in memory and are added to the store every ``usage_flush_interval_s`` (and at shutdown), so
they survive restarts and every replica adds to the same rows. At each flush the cost the TCO model accrued
since the last one is split between the keys by their tokens in that interval; an interval with no tokens
carries its cost to the next one that has some, so the keys' costs sum to the replica's total up to its
last busy interval. A flush that fails keeps its counts for the next. The same figures are Prometheus
counters, ``foresight_key_*{key}`` (keys are few: named apps, not users).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter

from protocol.openai import CachedTokensDetails, Usage
from protocol.responses import InputTokensDetails, ResponseUsage
from server.metrics import Metrics
from server.store import Store, StoreUnavailable

log = logging.getLogger("foresight.usage")
ANONYMOUS_KEY = "anonymous"  # what calls without a key (auth off) are counted under
COUNTS = ("requests", "prompt_tokens", "completion_tokens", "plans", "outcomes")


@dataclass
class TokenUsage:
    """The tokens one request spent: the one count, from the engine to the response. The generation service
    adds to it as the engine answers; the response's ``usage`` is rendered from it (:meth:`openai`,
    :meth:`responses`, the plan's); the route's usage dependency (:func:`server.deps.request_tokens`) charges
    it once, on the way out, to the rate limiter, this ledger and the metrics."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # of the prompt tokens, served by the engine's prefix cache
    model: str | None = None  # the served model the request ran on (the route sets it once it resolved one)

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def openai(self) -> Usage:
        return Usage(prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
                     total_tokens=self.total,
                     prompt_tokens_details=CachedTokensDetails(cached_tokens=self.cached_tokens))

    def responses(self) -> ResponseUsage:
        return ResponseUsage(input_tokens=self.prompt_tokens, output_tokens=self.completion_tokens,
                             total_tokens=self.total,
                             input_tokens_details=InputTokensDetails(cached_tokens=self.cached_tokens))


def _tally() -> dict[str, float]:
    return dict.fromkeys((*COUNTS, "cost"), 0.0)


Row = tuple[str, str]  # (key name, model); model "" for a request that named none


class UsageLedger:
    """Counts per (key, model) since the last flush; ``cost_total()`` is the replica's accrued cost so far."""

    def __init__(self, store: Store, metrics: Metrics, cost_total: Callable[[], float],
                 today: Callable[[], str] = lambda: dt.datetime.now(dt.UTC).date().isoformat()) -> None:
        self.store = store
        self._cost_total = cost_total
        self._today = today
        self._pending: dict[Row, dict[str, float]] = defaultdict(_tally)
        self._last_cost = cost_total()
        self._unattributed = 0.0
        r = metrics.registry
        self._requests = Counter("foresight_key_requests", "Requests by API key.", ["key"], registry=r)
        self._tokens = Counter("foresight_key_tokens", "Tokens by API key and kind.", ["key", "kind"], registry=r)
        self._plans = Counter("foresight_key_plans", "Plans by API key.", ["key"], registry=r)
        self._outcomes = Counter("foresight_key_outcomes", "Outcomes reported by API key.", ["key"], registry=r)
        self._cost = Counter("foresight_key_cost", "Cost of ownership attributed to each API key (TCO currency).",
                             ["key"], registry=r)

    def _add(self, key: str | None, model: str | None, what: str, n: float) -> str:
        name = key or ANONYMOUS_KEY
        self._pending[name, model or ""][what] += n
        return name

    def request(self, key: str | None, model: str | None = None) -> None:
        self._requests.labels(self._add(key, model, "requests", 1)).inc()

    def tokens(self, key: str | None, prompt: int, completion: int, model: str | None = None) -> None:
        name = self._add(key, model, "prompt_tokens", prompt)
        self._add(key, model, "completion_tokens", completion)
        self._tokens.labels(name, "prompt").inc(prompt)
        self._tokens.labels(name, "completion").inc(completion)

    def plan(self, key: str | None, model: str | None = None) -> None:
        self._plans.labels(self._add(key, model, "plans", 1)).inc()

    def outcome(self, key: str | None, model: str | None = None) -> None:
        self._outcomes.labels(self._add(key, model, "outcomes", 1)).inc()

    def attribute_cost(self) -> None:
        """Split the cost accrued since the last call between the (key, model) rows, by their share of the
        tokens."""
        now = self._cost_total()
        self._unattributed += max(0.0, now - self._last_cost)
        self._last_cost = now
        shares = {k: c["prompt_tokens"] + c["completion_tokens"] for k, c in self._pending.items()}
        total = sum(shares.values())
        if total <= 0:
            return
        for key, tokens in shares.items():
            cost = self._unattributed * tokens / total
            self._pending[key]["cost"] += cost
            self._cost.labels(key[0]).inc(cost)
        self._unattributed = 0.0

    async def flush(self) -> None:
        """Attribute the cost, then add the counts to the store (kept for the next flush if it fails)."""
        self.attribute_cost()
        pending, self._pending = self._pending, defaultdict(_tally)
        if not pending:
            return
        try:
            await self.store.add_usage(self._today(), pending)
        except BaseException:  # the store failed, or shutdown cancelled the flush: keep the counts
            for key, counts in pending.items():
                for what, n in counts.items():
                    self._pending[key][what] += n
            raise

    async def run(self, interval_s: float) -> None:
        """Flush every ``interval_s`` until cancelled; a flush that fails is tried again next time."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.flush()
            except StoreUnavailable:
                pass
            except Exception:  # never let one bad flush stop the accounting
                log.exception("usage flush failed; its counts wait for the next one")
