"""Prometheus metrics on one explicit registry (prefix ``foresight_``).

vLLM registers its own ``vllm:*`` metrics on prometheus_client's global
registry; ``/metrics`` serves both.
"""

from __future__ import annotations

import time

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from planner.format import PROBLEM_KINDS
from planner.search.base import Algorithm, Decision, Usage
from server.access_log import ASGIApp, HttpMiddleware, Receive, Scope, Send, StatusRecorder, route_path

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
        self.token_totals: dict[str, int] = {}  # the same counts, for the TCO ledger (count_tokens)
        self.decisions_total = 0  # plans decided, for the TCO ledger (count_decision)
        self.queue_depth = Gauge("foresight_queue_depth", "Engine sequences admitted beyond max_num_seqs (waiting "
                                 "for a slot).", registry=r)
        # planner
        self.plan_decisions = Counter("foresight_plan_decisions", "Plans by how they ended, per algorithm.",
                                      ["decision", "algorithm"], registry=r)
        self.plan_candidates = Histogram("foresight_plan_candidates", "Candidates sampled per plan.",
                                         buckets=(1, 2, 4, 8, 16, 32, 64), registry=r)
        self.plan_depth = Histogram("foresight_plan_depth", "Levels a plan searched.", buckets=(1, 2, 3, 4, 6, 8),
                                    registry=r)
        self.plan_latency = Histogram("foresight_plan_latency_seconds", "Wall time of a plan.",
                                      buckets=LATENCY_BUCKETS, registry=r)
        self.parse_problems = Counter("foresight_parse_problems", "Problems found parsing generated turns.",
                                      ["kind"], registry=r)
        for kind in PROBLEM_KINDS:  # zero series, so dashboards and alerts see the family from the start
            self.parse_problems.labels(kind)
        for decision in Decision:
            for algorithm in Algorithm:
                self.plan_decisions.labels(decision.value, algorithm.value)
        # cost (DESIGN §6; server/tco.py)
        self.gpu_power = Gauge("foresight_gpu_power_watts", "GPU power draw (NVML).", ["gpu"], registry=r)
        self.gpu_memory = Gauge("foresight_gpu_memory_used_bytes", "GPU memory used (NVML).", ["gpu"], registry=r)
        self.gpu_utilization = Gauge("foresight_gpu_utilization_ratio", "GPU utilization 0..1 (NVML).", ["gpu"],
                                     registry=r)
        self.busy_seconds = Counter("foresight_engine_busy_seconds", "Time the engine had unfinished work.",
                                    registry=r)
        self.energy = Counter("foresight_energy_joules", "Accelerator energy drawn (nvml) or estimated.",
                              ["method"], registry=r)
        self.cost = Counter("foresight_cost_usd", "Cost of ownership accrued, by component.", ["component"],
                            registry=r)
        self.cost_per_1k_tokens = Gauge("foresight_cost_per_1k_tokens_usd",
                                        "Cost per 1,000 generated tokens over the TCO window.", registry=r)
        self.cost_per_decision = Gauge("foresight_cost_per_decision_usd",
                                       "Cost per plan decision over the TCO window.", registry=r)
        # calibration (DESIGN §4): confidence="raw" is the model's own, "calibrated" what the planner used
        self.confidence_ece = Gauge(
            "foresight_confidence_ece", "Expected calibration error (15 equal-width bins) over reported outcomes.",
            ["model", "domain", "confidence"], registry=r,
        )
        self.confidence_brier = Gauge(
            "foresight_confidence_brier", "Brier score of confidence against reported outcomes.",
            ["model", "domain", "confidence"], registry=r,
        )
        self.outcomes = Counter("foresight_outcomes", "Outcomes reported by apps.", ["model", "domain", "result"],
                                registry=r)
        self.calibration_outcomes = Gauge(
            "foresight_calibration_outcomes", "Outcomes the domain's current calibration map was fitted on.",
            ["model", "domain"], registry=r,
        )
        self.fidelity = Histogram(
            "foresight_world_model_fidelity", "Similarity of the imagined rollout and the reported observation.",
            ["model", "domain"], buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0), registry=r,
        )
        self._shared_state_metrics(r)

    def _shared_state_metrics(self, r: CollectorRegistry) -> None:
        """The prefix cache under planning, and the shared systems replicas lean on (store, Redis)."""
        self.plan_prefix_cache = Counter(
            "foresight_plan_prefix_cache_tokens", "Plans' prompt tokens looked up (queried) and served (cached) by "
            "the engine's prefix cache, by call: proposals, or continuations of a generated span.",
            ["call", "kind"], registry=r,
        )
        for call in ("proposal", "continuation"):
            for kind in ("queried", "cached"):
                self.plan_prefix_cache.labels(call, kind)
        self.rate_limit_errors = Counter(
            "foresight_rate_limit_errors", "Rate-limit storage (Redis) failures; each request was admitted unlimited.",
            ["operation"], registry=r,
        )
        for operation in ("admit", "charge"):  # exported from the start: an alert's rate() has a series
            self.rate_limit_errors.labels(operation)
        self.store_errors = Counter(
            "foresight_store_errors", "Outcome-store operations that failed.", ["operation"], registry=r,
        )

    def count_tokens(self, kind: str, n: int) -> None:
        """``n`` tokens of ``kind`` (prompt, completion) processed."""
        self.tokens.labels(kind).inc(n)
        self.token_totals[kind] = self.token_totals.get(kind, 0) + n

    def count_prefix_cache(self, usage: Usage) -> None:
        """A plan's prompt tokens and those its engine's prefix cache served, by kind of call."""
        continuation, cached_cont = usage.continuation_prompt_tokens, usage.continuation_cached_tokens
        proposal = (usage.prompt_tokens - continuation, usage.cached_tokens - cached_cont)
        for call, (queried, cached) in (("proposal", proposal), ("continuation", (continuation, cached_cont))):
            self.plan_prefix_cache.labels(call, "queried").inc(queried)
            self.plan_prefix_cache.labels(call, "cached").inc(cached)

    def count_decision(self, decision: str, algorithm: str) -> None:
        """A plan of ``algorithm`` ended with ``decision``."""
        self.plan_decisions.labels(decision, algorithm).inc()
        self.decisions_total += 1

    def render(self, include_engine: bool = True) -> bytes:
        body = generate_latest(self.registry)
        if include_engine:
            body += generate_latest(REGISTRY)
        return body


class MetricsMiddleware(HttpMiddleware):
    """Counts every HTTP request by route template and status, and times it to its last byte."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = StatusRecorder(send)
        started = time.perf_counter()
        self.metrics.inflight.inc()
        try:
            await self.app(scope, receive, status)
        finally:
            path = route_path(scope)
            self.metrics.inflight.dec()
            self.metrics.requests.labels(path, str(status.code)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - started)
