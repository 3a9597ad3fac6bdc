"""Admission and body size.

:class:`Admission` counts the engine sequences admitted requests hold (``max_num_seqs`` running plus
``max_queue`` waiting), in all and per key; :func:`server.guards.admitted`, a dependency every generation
route declares, runs after authentication (so it knows whose request it is) and answers 429 with
Retry-After past it, before any work is done. Each generating route says how its body counts
(:func:`chat_sequences`, :func:`completion_sequences`, :func:`plan_sequences`).
``BodyLimitMiddleware`` refuses bodies over ``max_body_bytes`` with a 400 naming the limit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from planner.defaults import MEASURED
from planner.search import Algorithm, Budget, PlanConfig, largest_round
from server.access_log import ASGIApp, HttpMiddleware, Receive, Scope, Send
from server.errors import error_body


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": payload})


@dataclass(frozen=True)
class Claim:
    """What one request asks of admission: its engine sequences, whose they are (key, app, class) and its app's
    share weight within the class."""

    key: str
    sequences: int
    app: str = ""
    batch: bool = False
    weight: float = 1.0

    @property
    def slot(self) -> tuple[bool, str]:
        return self.batch, self.app or self.key


class Admission:
    """Counts the engine sequences that admitted requests hold, in all, per key and per (class, app); the queue is
    what runs beyond the engine's ``running`` slots. :meth:`admit` says why a request does not fit, or None:

    - ``queue_full``: its sequences do not fit in ``running + queue`` (one that alone is larger is admitted when
      nothing else runs: it can never fit otherwise);
    - ``batch_share_full``: a batch request past ``batch_share`` of the ``running`` slots (the rest stays free
      for interactive work, which the engine's priority then runs first);
    - ``fair_share_full``: while another app of its class is active (holds sequences, or was refused within
      ``recent_s``), an app holds at most ``weight / the active apps' weights summed`` of its class's slots
      (``running + queue`` for interactive work, the batch share for batch work: a plan claims its largest
      round for its whole life, so a share of ``running`` alone would hold a few plans to one at a time);
      an app's first request is always a candidate, so none starves.

    Hand-written, 60 lines: admission here refuses (429 with Retry-After) rather than queues, and no maintained
    library does weighted concurrency caps inside one ASGI process (``limits`` counts rates, not holdings)."""

    def __init__(self, running: int, queue: int, batch_share: float = 1.0, recent_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.running = running
        self.capacity = running + queue
        self.batch_cap = max(1, int(batch_share * running))
        self.active = 0
        self.batch_active = 0
        self.by_key: dict[str, int] = {}
        self.by_app: dict[tuple[bool, str], int] = {}
        self.weights: dict[tuple[bool, str], float] = {}
        self.refused: dict[tuple[bool, str], float] = {}  # when each app was last refused
        self.recent_s = recent_s
        self.clock = clock

    @property
    def waiting(self) -> int:
        return max(0, self.active - self.running)

    def fair_cap(self, claim: Claim) -> int | None:
        """The most sequences the claim's app may hold now (None: no other app of its class is active)."""
        now = self.clock()
        others = {slot for slot in (*self.by_app, *self.refused) if slot[0] == claim.batch and slot != claim.slot
                  and (self.by_app.get(slot, 0) > 0 or now - self.refused.get(slot, -1e9) < self.recent_s)}
        if not others:
            return None
        total = claim.weight + sum(self.weights.get(slot, 1.0) for slot in others)
        slots = self.batch_cap if claim.batch else self.capacity
        return max(1, int(claim.weight / total * slots))

    def admit(self, claim: Claim) -> str | None:
        """Hold the claim's sequences, or say why not (see the class's doc)."""
        reason = self._refusal(claim)
        if reason is not None:
            self.refused[claim.slot] = self.clock()
            self.weights[claim.slot] = claim.weight
            return reason
        self.active += claim.sequences
        self.batch_active += claim.sequences if claim.batch else 0
        self.by_key[claim.key] = self.by_key.get(claim.key, 0) + claim.sequences
        self.by_app[claim.slot] = self.by_app.get(claim.slot, 0) + claim.sequences
        self.weights[claim.slot] = claim.weight
        return None

    def _refusal(self, claim: Claim) -> str | None:
        n = claim.sequences
        if self.active and self.active + n > self.capacity:
            return "queue_full"
        if claim.batch and self.batch_active and self.batch_active + n > self.batch_cap:
            return "batch_share_full"
        held = self.by_app.get(claim.slot, 0)
        cap = self.fair_cap(claim)
        if held and cap is not None and held + n > cap:
            return "fair_share_full"
        return None

    def release(self, claim: Claim) -> None:
        self.active -= claim.sequences
        self.batch_active -= claim.sequences if claim.batch else 0
        _take(self.by_key, claim.key, claim.sequences)
        _take(self.by_app, claim.slot, claim.sequences)


def _take(table: dict[Any, int], name: Any, sequences: int) -> None:
    left = table.get(name, 0) - sequences
    if left > 0:
        table[name] = left
    else:
        table.pop(name, None)


def _whole(body: dict[str, Any], name: str, default: int, limit: int) -> int | None:
    """``body[name]`` as a count: the default where it is missing or not a positive whole number, None where it
    is above ``limit`` (the route refuses it with a 400 naming the field: admission must not answer first)."""
    value = body.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        return default
    return None if value > limit else value


def chat_sequences(body: Any, max_n: int) -> int:
    """A chat (or a response: one sequence) holds ``n`` sequences."""
    if not isinstance(body, dict):
        return 1
    return _whole(body, "n", 1, max_n) or 1


def completion_sequences(body: Any, max_n: int) -> int:
    """A completion holds ``n`` sequences per prompt (a list of prompts runs one after another: ``n``)."""
    return chat_sequences(body, max_n)


def plan_sequences(body: Any, max_n: int) -> int:
    """A plan holds its widest round at once: greedy one; best_of_n ``width``; branch_commit (the default) and
    self_consistency their largest round (:func:`planner.search.largest_round`); lookahead ``width`` roots, then
    ``branch`` branches of ``width`` side by side. What the body leaves out is the algorithm's measured default
    (:data:`planner.defaults.MEASURED`; a model's own ``planner.json`` is not known before the route resolves
    the model), else the knob's."""
    if not isinstance(body, dict):
        return 1
    try:
        algorithm = Algorithm(body.get("algorithm", Algorithm.BRANCH_COMMIT.value))
    except ValueError:
        return 1  # the route answers 400
    knobs, base = MEASURED.get(algorithm, {}), PlanConfig()
    width = _whole(body, "width", knobs.get("width", base.width), max_n)
    if algorithm is Algorithm.GREEDY or width is None:
        return 1
    if algorithm is Algorithm.LOOKAHEAD:
        return width * (_whole(body, "branch", base.branch, max_n) or 1)
    if algorithm not in (Algorithm.BRANCH_COMMIT, Algorithm.SELF_CONSISTENCY):
        return width
    growth = _whole(body, "width_growth", knobs.get("width_growth", base.width_growth), 8) or 1
    default_cap = knobs.get("budget", {}).get("max_candidates", base.budget.max_candidates)
    budget = body.get("budget")
    cap = (_whole(budget, "max_candidates", default_cap, 1 << 20) if isinstance(budget, dict) else default_cap)
    largest = largest_round(PlanConfig(width=width, width_growth=growth, budget=Budget(max_candidates=cap or 1)))
    return largest if largest <= max_n else 1  # wider than max_n: the route answers 400 (round_too_wide)


class BodyLimitMiddleware(HttpMiddleware):
    """Refuses request bodies above the limit (by Content-Length, or while reading a chunked body)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        super().__init__(app)
        self.limit = limit

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"the request body is larger than this server's limit of {self.limit} bytes (max_body_bytes)"
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _send_json(send, 400, error_body(message, "invalid_request_error", "request_too_large"), [])
                return
        if not any(name == b"transfer-encoding" for name, _ in scope.get("headers", [])):
            await self.app(scope, receive, send)
            return
        # chunked: read it here (bounded), refuse or replay
        chunks: list[bytes] = []
        seen = 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                await self.app(scope, receive, send)
                return
            chunks.append(msg.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.limit:
                await _send_json(send, 400, error_body(message, "invalid_request_error", "request_too_large"), [])
                return
            if not msg.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
