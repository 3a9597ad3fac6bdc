"""Evaluate a reference checkpoint against the simulator, through the real engine.

Two parts:

* **turns** on held-out states (one sample each, temperature 1): format validity,
  next-state and whole-rollout accuracy, and the confidence's Brier score and
  ECE against the true outcome of the plan it wrote — next to the Brier score of
  the exact probabilities of the same plans (the floor a perfect model reaches);
* **episodes** from held-out starts: success rate of random, reactive heuristic,
  model greedy, model best-of-N (highest confidence), exact one-step rollout
  planner, exact optimum — and, on request, the planner's own algorithms
  (``planners``: branch_commit, lookahead, …) played through ``planner.search``.

Brier scores are computed in expectation over the plan's exact success
probability p: E[(c - Y)^2] = p(1-c)^2 + (1-p)c^2, so they carry no sampling
noise from the outcomes.
"""

from __future__ import annotations

import asyncio
import random
import sys
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from tqdm import tqdm

from engine.base import Engine, GenerationRequest
from planner.calibration_math import expected_calibration_error
from planner.format import ACTION_STOPS, Turn, parse_turn
from reference import data
from reference import numberreach as env
from reference.numberreach import OPS, State

TURN_MAX_TOKENS = 128  # the reference model's turns take ~50 tokens; SmolLM2's take 71-105


@dataclass
class TurnMetrics:
    """Quality of single turns on held-out states."""

    states: int = 0
    format_validity: float = 0.0
    next_state_accuracy: float = 0.0
    rollout_accuracy: float = 0.0
    confidence_brier: float = 0.0  # against the exact chance of the plan written (in expectation)
    exact_brier: float = 0.0
    brier_gap: float = 0.0
    confidence_ece: float = 0.0  # against outcomes: each plan executed once in the environment
    outcome_brier: float = 0.0  # against the same outcomes
    exact_ece: float = 0.0  # against the exact chances (bin means of confidence against of chance)


@dataclass
class EvalResult:
    """Everything ``foresight reference eval`` reports."""

    model: str
    seed: int
    turns: TurnMetrics
    episodes: int
    best_of_n: int
    temperature: float = 1.0  # best-of-N's sampling temperature
    split: str = "heldout"  # the (x, t) pairs evaluated: "heldout" or "train"
    success: dict[str, float] = field(default_factory=dict)
    # generated tokens per decision of each planner configuration played (``--planners``)
    planner_tokens: dict[str, float] = field(default_factory=dict)
    # low-noise success estimates (mean, standard error) of the planners played: the exact one-step
    # planner's value plus the mean one-step advantage of the actions taken (reference.planning.paired_estimate)
    paired: dict[str, tuple[float, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _progress(total: int, desc: str, show: bool) -> tqdm:
    return tqdm(total=total, desc=desc, file=sys.stderr, disable=not show, leave=False)


def chat_prompt(engine: Engine, text: str) -> list[int]:
    """An observation as the user's message, rendered by the model's chat template (the shipped models'
    templates give exactly the encoded observation; a pretrained base's, its own turn markers)."""
    return engine.render_chat([{"role": "user", "content": text.strip()}])


async def sample_turns(engine: Engine, state: State, n: int, temperature: float,
                       seed: int | None = None) -> list[str]:
    """``n`` generated turns for one state (one engine call)."""
    ids = chat_prompt(engine, data.prompt_for(state))
    req = GenerationRequest(ids, n=n, max_tokens=TURN_MAX_TOKENS, temperature=temperature,
                            stop=ACTION_STOPS, include_stop_str_in_output=True, seed=seed)
    texts = [""] * n
    async for chunk in engine.generate(req, f"eval-{uuid.uuid4().hex}"):
        for d in chunk.deltas:
            texts[d.index] += d.text
    return texts


def plan_of(turn: Turn) -> tuple[str, ...]:
    """The operations of the plan a turn imagined (its action first if no rollout parses)."""
    ops = tuple(op for op, _ in data.parse_rollout(turn.imaginary or "") if op in OPS)
    if ops:
        return ops
    op = data.op_of_action(turn.action.arguments) if turn.action else None
    return (op,) if op else ()


def action_op(turn: Turn) -> str | None:
    return data.op_of_action(turn.action.arguments) if turn.action else None


def score_turn(state: State, turn: Turn) -> dict[str, float]:
    """Per-turn scores against the simulator."""
    steps = data.parse_rollout(turn.imaginary or "")
    x, correct = state.x, []
    for op, value in steps:
        x = env.apply_op(x, op) if op in OPS else -10**6
        correct.append(value == x)
        if not env.in_bounds(x) or x == state.t:
            break
    ops = plan_of(turn)
    ro = env.rollout_plan(state.x, state.t, ops)
    p = env.plan_success_prob(len(ro.ops), state.n, ro.reaches)
    c = turn.confidence if turn.confidence is not None else 0.5
    return {
        "valid": float(turn.is_valid),
        "next_state": float(bool(correct) and correct[0]),
        "rollout": float(bool(correct) and all(correct)),
        "brier": p * (1 - c) ** 2 + (1 - p) * c**2,
        "exact_brier": p * (1 - p),
        "p": p,
        "c": c,
    }


async def evaluate_turns(engine: Engine, count: int, seed: int, show: bool = True,
                         concurrency: int = 32, heldout: bool = True) -> TurnMetrics:
    rng = random.Random(seed)
    states = data.visited_states(rng, heldout=heldout)
    picked = [next(states) for _ in range(count)]
    sem = asyncio.Semaphore(concurrency)
    scores: list[dict[str, float]] = []
    bar = _progress(count, "turns", show)

    async def one(i: int, s: State) -> None:
        async with sem:
            (text,) = await sample_turns(engine, s, 1, 1.0, seed=seed * 100_000 + i)
        scores.append(score_turn(s, parse_turn(text)))
        bar.update(1)

    await asyncio.gather(*(one(i, s) for i, s in enumerate(picked)))
    bar.close()
    n = max(len(scores), 1)

    def mean(k: str) -> float:
        return sum(s[k] for s in scores) / n

    outcome_rng = random.Random(seed + 1)
    outcomes = [outcome_rng.random() < s["p"] for s in scores]
    confidences = [s["c"] for s in scores]
    return TurnMetrics(
        states=len(scores),
        format_validity=mean("valid"),
        next_state_accuracy=mean("next_state"),
        rollout_accuracy=mean("rollout"),
        confidence_brier=mean("brier"),
        exact_brier=mean("exact_brier"),
        brier_gap=mean("brier") - mean("exact_brier"),
        confidence_ece=expected_calibration_error(confidences, outcomes),
        outcome_brier=sum((c - y) ** 2 for c, y in zip(confidences, outcomes, strict=True)) / n,
        exact_ece=expected_calibration_error(confidences, [s["p"] for s in scores]),
    )


async def _model_op(engine: Engine, state: State, n: int, rng: random.Random,
                    temperature: float = 1.0) -> str | None:
    if n == 1:
        (text,) = await sample_turns(engine, state, 1, 0.0)
        return action_op(parse_turn(text))
    texts = await sample_turns(engine, state, n, temperature, seed=rng.randrange(2**31))
    turns = [parse_turn(t) for t in texts]
    usable = [t for t in turns if action_op(t) is not None]
    if not usable:
        return None
    best = max(usable, key=lambda t: -1.0 if t.confidence is None else t.confidence)
    return action_op(best)


async def run_episodes(engine: Engine | None, policy: str, starts: list[State], seed: int,
                       best_of_n: int = 8, show: bool = True, concurrency: int = 32,
                       temperature: float = 1.0) -> float:
    """Success rate of one policy over ``starts`` (one episode each); ``temperature`` is best-of-N's."""
    sem = asyncio.Semaphore(concurrency)
    bar = _progress(len(starts), policy, show)

    async def choose(state: State, rng: random.Random) -> str | None:
        if policy == "random":
            return rng.choice(OPS)
        if policy == "reactive":
            return env.reactive_op(state.x, state.t)
        if policy == "one_step":
            return env.one_step_op(state.x, state.t, state.n)
        if policy == "optimal":
            return env.optimal_op(state.x, state.t, state.n)
        assert engine is not None
        async with sem:
            return await _model_op(engine, state, 1 if policy == "model_greedy" else best_of_n, rng, temperature)

    async def episode(i: int, start: State) -> bool:
        rng = random.Random(seed * 7919 + i)
        state = start
        while not state.done:
            op = await choose(state, rng)
            if op is None:
                return False
            state = env.step(state, op, rng).state
        bar.update(1)
        return state.success

    results = await asyncio.gather(*(episode(i, s) for i, s in enumerate(starts)))
    bar.close()
    return sum(results) / max(len(results), 1)


POLICIES = ("random", "reactive", "model_greedy", "model_best_of_n", "one_step", "optimal")


async def evaluate(engine: Engine, *, episodes: int = 200, states: int = 300, seed: int = 0,
                   best_of_n: int = 8, show: bool = True, policies: tuple[str, ...] = POLICIES,
                   temperature: float = 1.0, heldout: bool = True, planners: tuple[str, ...] = ()) -> EvalResult:
    """Turn metrics and episode success on held-out pairs (``heldout=False``: on training pairs,
    to tell a generalization gap from a capacity one); best-of-N samples at ``temperature``;
    ``planners`` also plays those planner configurations (:data:`reference.planning.PLANNERS`)."""
    rng = random.Random(seed)
    pool = env.start_states(heldout=heldout)
    starts = [rng.choice(pool) for _ in range(episodes)]
    turns = await evaluate_turns(engine, states, seed, show, heldout=heldout) if states else TurnMetrics()
    result = EvalResult(model=engine.info.name, seed=seed, turns=turns, episodes=episodes, best_of_n=best_of_n,
                        temperature=temperature, split="heldout" if heldout else "train")
    for policy in policies if starts else ():
        result.success[policy] = await run_episodes(engine, policy, starts, seed, best_of_n, show,
                                                    temperature=temperature)
    if planners and starts:
        await _play_planners(engine, planners, starts, seed, result, show)
    return result


async def _play_planners(engine: Engine, names: tuple[str, ...], starts: list[State], seed: int,
                         result: EvalResult, show: bool) -> None:
    """The planner's algorithms (:data:`reference.planning.PLANNERS`) on the same episodes."""
    from engine.sampler import EngineSampler
    from reference.planning import PLANNERS, paired_estimate, run_planner

    unknown = sorted(set(names) - set(PLANNERS))
    if unknown:
        raise ValueError(f"unknown planner configuration(s) {unknown}; known: {sorted(PLANNERS)}")
    sampler = EngineSampler(engine, add_special_tokens=True)
    for name in names:
        if show:
            print(f"planner {name} on {len(starts)} episodes…", file=sys.stderr)
        gains: list[float] = []
        rate, tokens = await run_planner(sampler, PLANNERS[name], starts, seed, gains=gains,
                                         start=lambda text: sampler.prompt(chat_prompt(engine, text)))
        result.success[f"planner_{name}"] = rate
        result.planner_tokens[name] = tokens
        result.paired[f"planner_{name}"] = paired_estimate(starts, gains)
