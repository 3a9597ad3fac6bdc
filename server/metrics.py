"""Prometheus metrics on one explicit registry (prefix ``foresight_``).

vLLM registers its own ``vllm:*`` metrics on prometheus_client's global
registry; ``/metrics`` serves both.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """The server's own metric families."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("foresight_requests", "HTTP requests served.", ["route", "status"], registry=r)
        self.latency = Histogram(
            "foresight_request_latency_seconds", "End-to-end request latency.", ["route"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.ttft = Histogram(
            "foresight_time_to_first_token_seconds", "Time to the first generated token.",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.inflight = Gauge("foresight_inflight_requests", "Requests being served now.", registry=r)
        self.tokens = Counter("foresight_tokens", "Tokens processed.", ["kind"], registry=r)

    def render(self, include_engine: bool = True) -> bytes:
        body = generate_latest(self.registry)
        if include_engine:
            body += generate_latest(REGISTRY)
        return body


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class MetricsMiddleware:
    """Counts every HTTP request by route template and status, and times it to its last byte."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}
        started = time.perf_counter()

        async def send_wrapper(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        self.metrics.inflight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.inflight.dec()
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(path, str(status["code"])).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - started)
