"""Trajectories of the reference environment written in the foresight format (DESIGN §2).

A prompt is one observation::

    <information>x=7 target=52 steps=6</information>

and the model's turn is::

    <imaginary>*3 21, +2 23, *2 46, +2 48, *2 96</imaginary>
    <analysis>5 of 6, miss</analysis>
    <confidence>0%</confidence>
    <think>first *3</think>
    <tool_call>{"name": "apply", "arguments": {"op": "*3"}}</tool_call>

The imaginary span is the plan's predicted trajectory (``op value`` steps, no
stalls, ending at the target or at a bust, marked ``bust``). The analysis states
the plan's length, the steps left and whether it hits; the confidence is the exact
probability that the plan, executed with retries after stalls, reaches the
target (:func:`reference.numberreach.plan_success_prob`); the action is the plan's
first operation. Pure Python.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

from planner.format import format_confidence
from reference import numberreach as env
from reference.numberreach import OPS, State

TOOL_NAME = "apply"
_PROMPT_RE = re.compile(r"x=(-?\d+)\s+target=(\d+)\s+steps=(\d+)")
_STEP_RE = re.compile(r"([+*\-]\d)\s+(-?\d+)")

# how often each plan source appears in stage-2/3 turns: the plans the model learns to judge (with
# TrainConfig.policy_plans == "shortest", only the shortest hits among them teach it what to propose)
PLAN_MIX = {"reactive": 0.5, "shortest": 0.25, "random": 0.25}
# share of stage-2/3 turns followed by the observation the model imagines its action leads to
OBSERVATION_SHARE = 0.3


def prompt_for(state: State) -> str:
    return f"<information>x={state.x} target={state.t} steps={state.n}</information>\n"


def parse_prompt(text: str) -> State | None:
    m = _PROMPT_RE.search(text)
    return State(int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def render_rollout(ro: env.PlanRollout) -> str:
    parts = [f"{op} {v}" for op, v in zip(ro.ops, ro.states, strict=True)]
    if ro.busted:
        parts[-1] += " bust"
    return ", ".join(parts)


def parse_rollout(text: str) -> list[tuple[str, int]]:
    """``op value`` pairs from an imaginary span (tolerant: bad pairs are skipped)."""
    return [(m.group(1), int(m.group(2))) for m in _STEP_RE.finditer(text or "")]


def tool_call(op: str) -> str:
    return json.dumps({"name": TOOL_NAME, "arguments": {"op": op}})


def op_of_action(arguments: object) -> str | None:
    """The operation named by a tool call's arguments, if it is a known one."""
    if isinstance(arguments, dict) and arguments.get("op") in OPS:
        return str(arguments["op"])
    return None


@dataclass(frozen=True)
class Example:
    """One training or evaluation text: a prompt and the target completion."""

    prompt: str
    completion: str
    state: State
    plan: tuple[str, ...]
    confidence: float
    shortest_hit: bool = False  # the plan reaches the target by a shortest plan (see reference.train)


def analysis_for(state: State, ro: env.PlanRollout) -> str:
    verdict = "bust" if ro.busted else ("hit" if ro.reaches else "miss")
    return f"{len(ro.ops)} of {state.n}, {verdict}"


def make_turn(state: State, plan: tuple[str, ...]) -> Example:
    ro = env.rollout_plan(state.x, state.t, plan)
    p = env.plan_success_prob(len(ro.ops), state.n, ro.reaches)
    text = (
        f"<imaginary>{render_rollout(ro)}</imaginary>\n"
        f"<analysis>{analysis_for(state, ro)}</analysis>\n"
        f"<confidence>{format_confidence(round(p, 2))}</confidence>\n"
        f"<think>first {ro.ops[0]}</think>\n"
        f"<tool_call>{tool_call(ro.ops[0])}</tool_call>"
    )
    shortest = env.is_shortest_hit(state.x, state.t, state.n, ro.ops)
    return Example(prompt_for(state), text, state, ro.ops, round(p, 2), shortest)


def imagined_observation(state: State, op: str) -> str:
    """The observation a turn's action leads to if it does not stall (what lookahead imagines)."""
    return f"<information>x={env.apply_op(state.x, op)} target={state.t} steps={state.n - 1}</information>"


def with_observation(ex: Example) -> Example:
    """A turn followed by its imagined next observation (teaches the model to imagine it)."""
    text = ex.completion + "\n" + imagined_observation(ex.state, ex.plan[0])
    return Example(ex.prompt, text, ex.state, ex.plan, ex.confidence, ex.shortest_hit)


def make_rollout_only(state: State, plan: tuple[str, ...]) -> Example:
    """Stage 1 (world-model mid-training): the predicted trajectory of a plan only."""
    ro = env.rollout_plan(state.x, state.t, plan)
    text = f"<imaginary>{render_rollout(ro)}</imaginary>"
    return Example(prompt_for(state), text, state, ro.ops, 0.0)


def random_plan(state: State, rng: random.Random) -> tuple[str, ...]:
    """``state.n`` random operations (the rollout then stops only at the target, a bust or the last
    step — a deterministic stop)."""
    return tuple(rng.choice(OPS) for _ in range(state.n))


def sample_plan(state: State, rng: random.Random) -> tuple[str, ...]:
    """A plan from the policy prior :data:`PLAN_MIX` (reactive, shortest, random)."""
    reactive, shortest = PLAN_MIX["reactive"], PLAN_MIX["shortest"]
    r = rng.random()
    if r < reactive:
        return env.reactive_plan(state.x, state.t, state.n)
    if r < reactive + shortest:
        plans = env.shortest_plans(state.x, state.t, state.n)
        if plans:
            return rng.choice(plans)
    return random_plan(state, rng)


def visited_states(rng: random.Random, heldout: bool) -> Iterator[State]:
    """States met in episodes played by a mix of policies, on one side of the split."""
    held = env.heldout_pairs()
    starts = env.start_states(heldout=heldout)
    while True:
        state = rng.choice(starts)
        mode = rng.random()
        while not state.done:
            if ((state.x, state.t) in held) == heldout:
                yield state
            if mode < 0.4:
                op = env.optimal_op(state.x, state.t, state.n)
            elif mode < 0.7:
                op = env.reactive_op(state.x, state.t)
            else:
                op = rng.choice(OPS)
            state = env.step(state, op, rng).state


def stage_examples(stage: int, count: int, seed: int, heldout: bool = False) -> list[Example]:
    """``count`` examples of training stage 1 (rollouts of random plans), 2 (turns) or 3 (turns,
    calibration)."""
    rng = random.Random(seed * 1000 + stage)
    states = visited_states(rng, heldout)
    out: list[Example] = []
    for _ in range(count):
        state = next(states)
        if stage == 1:
            out.append(make_rollout_only(state, random_plan(state, rng)))
            continue
        ex = make_turn(state, sample_plan(state, rng))
        out.append(with_observation(ex) if rng.random() < OBSERVATION_SHARE else ex)
    return out
