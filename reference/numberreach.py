"""NumberReach: the reference environment, an exact and seeded simulator.

State: current value ``x``, target ``t``, steps left ``n``. Each step the agent
applies one operation from :data:`OPS`. With probability :data:`STALL_PROB` the
operation stalls (``x`` unchanged, the step is still used). A result outside
``[LOW, HIGH]`` busts the episode. The episode succeeds when ``x == t`` with
``n >= 0`` steps left.

Why this environment: the reactive choice ("the operation whose result is
closest to ``t``") succeeds in about 42% of episodes, the exact optimum in
about 93%, so looking ahead pays, and every quantity a foresight model writes
(next states, whether a plan reaches the target, its success probability) has
an exact answer to grade it against.

Pure Python, no torch.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from math import comb

OPS: tuple[str, ...] = ("+1", "+2", "*2", "*3", "-1")
STALL_PROB = 0.15
LOW, HIGH = 1, 199
START_X = range(2, 16)
TARGETS = range(20, 100)
HORIZON = 6
HELDOUT_FRACTION = 0.15
SPLIT_SEED = 20261125


def apply_op(x: int, op: str) -> int:
    """Deterministic result of ``op`` on ``x`` (may be out of bounds)."""
    if op == "+1":
        return x + 1
    if op == "+2":
        return x + 2
    if op == "*2":
        return x * 2
    if op == "*3":
        return x * 3
    if op == "-1":
        return x - 1
    raise ValueError(f"unknown operation {op!r}; expected one of {', '.join(OPS)}")


def in_bounds(x: int) -> bool:
    return LOW <= x <= HIGH


@dataclass(frozen=True)
class State:
    """One NumberReach state."""

    x: int
    t: int
    n: int

    @property
    def done(self) -> bool:
        return self.x == self.t or self.n <= 0 or not in_bounds(self.x)

    @property
    def success(self) -> bool:
        return self.x == self.t


@dataclass(frozen=True)
class StepResult:
    """What one environment step produced."""

    state: State
    stalled: bool
    busted: bool


def step(state: State, op: str, rng: random.Random, stall_prob: float = STALL_PROB) -> StepResult:
    """Apply ``op`` with the stall probability (another than the model's in a deployed world that
    differs, as in :func:`simulate_plan`); the only random transition."""
    if state.done:
        raise ValueError("episode is over")
    if rng.random() < stall_prob:
        return StepResult(State(state.x, state.t, state.n - 1), stalled=True, busted=False)
    nx = apply_op(state.x, op)
    busted = not in_bounds(nx)
    return StepResult(State(nx, state.t, state.n - 1), stalled=False, busted=busted)


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class PlanRollout:
    """The deterministic (no-stall) trajectory of a plan and what it means."""

    ops: tuple[str, ...]
    states: tuple[int, ...]  # value after each op (the last may be out of bounds)
    reaches: bool
    busted: bool


def rollout_plan(x: int, t: int, ops: Sequence[str]) -> PlanRollout:
    """Follow ``ops`` without stalls, stopping at the target or a bust."""
    states: list[int] = []
    used: list[str] = []
    for op in ops:
        x = apply_op(x, op)
        used.append(op)
        states.append(x)
        if not in_bounds(x):
            return PlanRollout(tuple(used), tuple(states), reaches=False, busted=True)
        if x == t:
            return PlanRollout(tuple(used), tuple(states), reaches=True, busted=False)
    return PlanRollout(tuple(used), tuple(states), reaches=False, busted=False)


def plan_success_prob(length: int, steps: int, reaches: bool) -> float:
    """Exact probability that a plan reaches the target when executed with retries.

    A plan of ``length`` operations, each retried after a stall, succeeds when
    ``length`` of the ``steps`` attempts do not stall: P(Binomial(steps, 1-p) >= length).
    """
    if not reaches or length > steps:
        return 0.0
    q = 1.0 - STALL_PROB
    return sum(comb(steps, k) * q**k * STALL_PROB ** (steps - k) for k in range(length, steps + 1))


def simulate_plan(state: State, ops: Sequence[str], rng: random.Random, stall_prob: float = STALL_PROB) -> bool:
    """Execute a plan with retries in the real (stochastic) environment (``stall_prob`` other than the
    model's 0.15: a world that differs from what the model learned, as deployed worlds do)."""
    x, n, i = state.x, state.n, 0
    while n > 0 and i < len(ops):
        n -= 1
        if rng.random() < stall_prob:
            continue
        x = apply_op(x, ops[i])
        i += 1
        if not in_bounds(x):
            return False
        if x == state.t:
            return True
    return x == state.t


# --------------------------------------------------------------------------- policies


def reactive_op(x: int, t: int) -> str:
    """The reactive heuristic: the in-bounds operation whose result is closest to ``t``."""
    best = min(
        (op for op in OPS if in_bounds(apply_op(x, op))),
        key=lambda op: abs(apply_op(x, op) - t),
        default=OPS[0],
    )
    return best


def reactive_plan(x: int, t: int, n: int) -> tuple[str, ...]:
    """The heuristic applied repeatedly, no stalls, until the target, a bust or ``n`` ops."""
    ops: list[str] = []
    for _ in range(n):
        op = reactive_op(x, t)
        ops.append(op)
        x = apply_op(x, op)
        if x == t or not in_bounds(x):
            break
    return tuple(ops)


def _ended(x: int, t: int, n: int) -> float | None:
    """1 or 0 if the episode is over at (x, t, n), else None."""
    if x == t:
        return 1.0
    if n <= 0 or not in_bounds(x):
        return 0.0
    return None


def _then(value: Callable[[int, int, int], float], x: int, t: int, n: int, op: str) -> float:
    """Success probability of ``op`` now and the policy whose value is ``value`` afterwards (a stall
    keeps x and uses the step)."""
    nx = apply_op(x, op)
    moved = value(nx, t, n - 1) if in_bounds(nx) else 0.0
    return STALL_PROB * value(x, t, n - 1) + (1 - STALL_PROB) * moved


@cache
def optimal_value(x: int, t: int, n: int) -> float:
    """Exact success probability of the optimal closed-loop policy (DP)."""
    ended = _ended(x, t, n)
    return ended if ended is not None else max(q_value(x, t, n, op) for op in OPS)


def q_value(x: int, t: int, n: int, op: str) -> float:
    """Success probability of ``op`` now, optimal afterwards."""
    return _then(optimal_value, x, t, n, op)


def optimal_op(x: int, t: int, n: int) -> str:
    return max(OPS, key=lambda op: q_value(x, t, n, op))


@cache
def reactive_value(x: int, t: int, n: int) -> float:
    """Exact success probability of following the reactive heuristic."""
    ended = _ended(x, t, n)
    return ended if ended is not None else _then(reactive_value, x, t, n, reactive_op(x, t))


def one_step_op(x: int, t: int, n: int) -> str:
    """Exact one-step rollout planner: best op when followed by the reactive heuristic."""
    return max(OPS, key=lambda op: _then(reactive_value, x, t, n, op))


@cache
def one_step_value(x: int, t: int, n: int) -> float:
    """Exact success probability of the one-step rollout planner, which re-plans at every step."""
    ended = _ended(x, t, n)
    return ended if ended is not None else one_step_q(x, t, n, one_step_op(x, t, n))


def one_step_q(x: int, t: int, n: int, op: str) -> float:
    """Success probability of ``op`` now, the one-step rollout planner afterwards.

    ``one_step_q(s, a) - one_step_value(s)`` summed along a policy's own episodes estimates, without
    bias, how much more often that policy succeeds than the one-step planner from the same start (the
    performance-difference identity) — with less noise than comparing two success rates."""
    return _then(one_step_value, x, t, n, op)


@cache
def shortest_plans(x: int, t: int, n: int) -> tuple[tuple[str, ...], ...]:
    """All shortest deterministic op sequences (≤ n) from ``x`` to ``t``, in bounds."""
    frontier: list[tuple[int, tuple[str, ...]]] = [(x, ())]
    for _ in range(n):
        found: list[tuple[str, ...]] = []
        nxt: list[tuple[int, tuple[str, ...]]] = []
        for value, ops in frontier:
            for op in OPS:
                nv = apply_op(value, op)
                if not in_bounds(nv):
                    continue
                if nv == t:
                    found.append((*ops, op))
                else:
                    nxt.append((nv, (*ops, op)))
        if found:
            return tuple(found)
        frontier = nxt
    return ()


@cache
def shortest_hit_length(x: int, t: int, n: int) -> int | None:
    """The length of the shortest in-bounds op sequence (≤ n) from ``x`` to ``t``; None if none hits."""
    frontier = {x}
    for length in range(1, n + 1):
        nxt = {apply_op(v, op) for v in frontier for op in OPS}
        if t in nxt:
            return length
        frontier = {v for v in nxt if in_bounds(v)}
    return None


def is_shortest_hit(x: int, t: int, n: int, ops: Sequence[str]) -> bool:
    """Whether ``ops`` (without stalls) reaches ``t`` by a shortest plan, using every op it lists."""
    ro = rollout_plan(x, t, ops)
    return ro.reaches and len(ro.ops) == len(ops) and len(ops) == shortest_hit_length(x, t, n)


# --------------------------------------------------------------------------- split


def heldout_pairs(seed: int = SPLIT_SEED) -> frozenset[tuple[int, int]]:
    """The (x, t) pairs kept out of training: a seeded 15% of all pairs."""
    rng = random.Random(seed)
    pairs = [(x, t) for x in range(LOW, HIGH + 1) for t in TARGETS]
    rng.shuffle(pairs)
    return frozenset(pairs[: int(len(pairs) * HELDOUT_FRACTION)])


def start_states(heldout: bool, seed: int = SPLIT_SEED) -> list[State]:
    """Episode starts on one side of the split."""
    held = heldout_pairs(seed)
    return [
        State(x, t, HORIZON)
        for x in START_X
        for t in TARGETS
        if ((x, t) in held) == heldout and x != t
    ]


Policy = Callable[[State], str]


def run_episode(start: State, policy: Policy, rng: random.Random) -> bool:
    """Play one episode with ``policy`` choosing the op in every state."""
    state = start
    while not state.done:
        state = step(state, policy(state), rng).state
    return state.success


def success_rate(starts: Iterable[State], policy: Policy, seed: int, repeats: int = 1) -> float:
    rng = random.Random(seed)
    results = [run_episode(s, policy, rng) for s in starts for _ in range(repeats)]
    return sum(results) / max(len(results), 1)
