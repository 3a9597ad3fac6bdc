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
target (:func:`reference.env.plan_success_prob`); the action is the plan's
first operation. Pure Python.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

from planner.format import format_confidence
from reference import env
from reference.env import OPS, State

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


def ended_state(state: State, rng: random.Random) -> State:
    """An ended episode near ``state``: the last step's result with no steps left (short of the
    target, or on it), or a bust — the observations lookahead imagines after a last or a busting
    action. (Not the target reached with steps to spare: those examples taught the model to end
    episodes early next to the target; a plan that reaches it already says so by its confidence.)"""
    r = rng.random()
    if r < 0.5:
        return State(env.apply_op(state.x, rng.choice(OPS)), state.t, 0)
    if r < 0.75:
        return State(state.t, state.t, 0)
    return State(rng.choice((0, rng.randint(200, 597))), state.t, rng.randint(0, max(state.n - 1, 0)))


def make_ended_turn(state: State) -> Example:
    """The turn at an ended episode: its rollout is the value it ended on (so "is it the target?"
    is judged on the last value written, as in every rollout), the confidence is 100% if that is
    the target, else 0%, and the action an ``<answer>``. Training never meets these states
    otherwise, and without them a model asked to look past its last step keeps predicting hits."""
    if not state.done:
        raise ValueError(f"episode is not over: {state}")
    busted = not env.in_bounds(state.x)
    verdict = "hit" if state.success else ("bust" if busted else "miss")
    p = 1.0 if state.success else 0.0
    text = (
        f"<imaginary>{state.x}{' bust' if busted else ''}</imaginary>\n"
        f"<analysis>0 of {state.n}, {verdict}</analysis>\n"
        f"<confidence>{format_confidence(p)}</confidence>\n"
        f"<think>episode over: {verdict}</think>\n"
        f"<answer>{verdict}</answer>"
    )
    return Example(prompt_for(state), text, state, (), p)


def make_rollout_only(state: State, plan: tuple[str, ...]) -> Example:
    """Stage 1 (world-model mid-training): the predicted trajectory of a plan only."""
    ro = env.rollout_plan(state.x, state.t, plan)
    text = f"<imaginary>{render_rollout(ro)}</imaginary>"
    return Example(prompt_for(state), text, state, ro.ops, 0.0)


def make_match(state: State, rng: random.Random) -> Example:
    """Auxiliary "is this the target?" drill: a list of random values that stops exactly at the target.

    Values are random, so nothing but an exact match with the target predicts the stop: the drill
    trains the equality the rollouts' "arrived?" decision needs, without the arithmetic that lets a
    small model get by on closeness instead."""
    length = rng.randint(1, 6)
    values = [v for v in (rng.randint(1, 199) for _ in range(length * 2)) if v != state.t][:length]
    if rng.random() < 0.5:
        values[-1] = state.t
    text = f"<keyword>{' '.join(map(str, values))}</keyword>"
    return Example(prompt_for(state), text, state, (), 0.0)


def random_plan(state: State, rng: random.Random, full: bool = True) -> tuple[str, ...]:
    """Random operations: ``state.n`` of them if ``full`` (the rollout then stops only at the
    target, a bust or the last step — a deterministic stop), else a random number of them."""
    return tuple(rng.choice(OPS) for _ in range(state.n if full else rng.randint(1, state.n)))


def sample_plan(state: State, rng: random.Random, mix: tuple[float, float, float] | None = None,
                full: bool = True) -> tuple[str, ...]:
    """A plan from the policy prior ``mix`` (reactive, shortest, random; default :data:`PLAN_MIX`)."""
    reactive, shortest, _ = mix or (PLAN_MIX["reactive"], PLAN_MIX["shortest"], PLAN_MIX["random"])
    r = rng.random()
    if r < reactive:
        return env.reactive_plan(state.x, state.t, state.n)
    if r < reactive + shortest:
        plans = env.shortest_plans(state.x, state.t, state.n)
        if plans:
            return rng.choice(plans)
    return random_plan(state, rng, full)


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


def stage_examples(stage: int, count: int, seed: int, heldout: bool = False,
                   stage1_policy_share: float = 0.0, match_share: float = 0.0,
                   mix: tuple[float, float, float] | None = None, full_plans: bool = True,
                   ended_share: float = 0.0) -> list[Example]:
    """``count`` examples of training stage 1 (rollouts), 2 (turns) or 3 (turns, calibration).

    Stage 1 predicts rollouts of random plans; ``stage1_policy_share`` of them come from the policy
    prior instead (plans that approach and hit the target, so "stop at the target" is seen early);
    ``ended_share`` of stage-2/3 examples are turns at an ended episode (:func:`make_ended_turn`)."""
    rng = random.Random(seed * 1000 + stage)
    held = env.heldout_pairs()
    states = visited_states(rng, heldout)
    out: list[Example] = []
    for _ in range(count):
        state = next(states)
        if match_share > 0 and rng.random() < (match_share if stage == 1 else match_share / 3):
            out.append(make_match(state, rng))
            continue
        if stage == 1:
            policy = stage1_policy_share > 0 and rng.random() < stage1_policy_share
            plan = sample_plan(state, rng, mix, full_plans) if policy else random_plan(state, rng, full_plans)
            out.append(make_rollout_only(state, plan))
            continue
        if ended_share > 0 and rng.random() < ended_share:
            ended = ended_state(state, rng)
            if ((ended.x, ended.t) in held) == heldout:
                out.append(make_ended_turn(ended))
                continue
        ex = make_turn(state, sample_plan(state, rng, mix, full_plans))
        out.append(with_observation(ex) if rng.random() < OBSERVATION_SHARE else ex)
    return out
