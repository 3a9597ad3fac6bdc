"""The search world's trajectories in the foresight format (DESIGN §2).

A prompt is the question and what every search returned so far, one observation a line::

    <information>question: Ber mentor rival ? steps=3</information>
    <information>Zaz mentor Ber #4 steps=2</information>

and the model's turn is::

    <imaginary>Ber mentor Zin. Zin rival Kog #37 search Kog rival: 1 Kog rival Dad #80; 2 Zin rival Kog #37</imaginary>
    <analysis>#37 rank 2, steps 2</analysis>
    <confidence>38%</confidence>
    <think>search Kog rival</think>
    <search>Kog rival</search>

The imaginary span is the world model: the question's chain of facts (each with the id of the document
stating it, when one does: ``Ber mentor Zin``'s passage is missing), then the plan — ``search q`` with
what that search can return (its candidates, numbered in rank order, each with its document id) or
``answer`` — and ``found`` when the last fact was already returned (its document id is in the history:
the one-token check the id is for). The analysis restates the last fact's document id, then says whether
it was returned (an answer) or its rank among the numbered candidates and the searches left (a search):
each check is made at a copy of the id — one token matched against the history, or against the list
whose numbers give the rank — not at a distance from it. The confidence is the plan's exact chance
(:meth:`World.plan_success`).
Pure Python.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

from planner.format import format_confidence
from reference.search import env
from reference.search.env import Action, Question, State, World
from reference.search.kb import RELATIONS, split_document

# how often each plan source appears in stage-2/3 turns where the last fact is not yet found
# ("found": a plan that answers claiming the passage came back when it did not — after a search only; its
# analysis says "not found" and its confidence 0%, so a mistaken "found" is caught where the chance is
# stated; "answer" otherwise)
PLAN_MIX = {"best": 0.43, "other": 0.2, "reactive": 0.15, "random": 0.1, "answer": 0.1, "found": 0.02}
OBSERVATION_SHARE = 0.3
# share of turns whose observations are redrawn from what searches near the question return (the last
# fact's passage, its neighbours in rank, the chain's other facts' passages, nothing): "has the last
# fact's passage been returned?" then holds about half the time whatever the steps left, so the model
# must find the passage in its history, not guess from how many searches it made (measured: trained
# on played episodes only, it said "found" after any one search about as often as that was true)
NEAR_MISS_SHARE = 0.4
_QUESTION_RE = re.compile(r"question:\s*(\S+)((?:\s+\w+)+?)\s*\?\s*steps=(\d+)")
_OBS_RE = re.compile(r"<information>\s*(.*?)\s*steps=(\d+)\s*</information>")


def observation(found: str | None, steps: int) -> str:
    """What the environment answers a search with (the text inside ``<information>``)."""
    return f"{found or 'nothing found'} steps={steps}"


def prompt_for(state: State) -> str:
    lines = [f"<information>question: {state.question.text} steps={env.STEPS}</information>"]
    for i, found in enumerate(state.observed):
        lines.append(f"<information>{observation(found, env.STEPS - i - 1)}</information>")
    return "\n".join(lines) + "\n"


def parse_prompt(text: str) -> State | None:
    """The state a prompt describes (None if it has no question)."""
    m = _QUESTION_RE.search(text)
    if not m:
        return None
    rels = tuple(m.group(2).split())
    if not rels or any(r not in RELATIONS for r in rels):
        return None
    observed: list[str | None] = []
    steps = int(m.group(3))
    for o in _OBS_RE.finditer(text[m.end():]):
        body = o.group(1).strip()
        observed.append(None if body == "nothing found" else body)
        steps = int(o.group(2))
    return State(Question(m.group(1), rels), steps, tuple(observed))


@dataclass(frozen=True)
class Plan:
    query: str | None  # None: answer now
    answer: str
    claims_found: bool = False  # answers as if the passage had come back (when it has: always)


@dataclass(frozen=True)
class Example:
    """One training or evaluation text: a prompt and the target completion."""

    prompt: str
    completion: str
    state: State
    plan: Plan
    confidence: float
    optimal: bool = False  # the plan is the optimal policy's (only those teach the plan's choice)
    policy_span: tuple[int, int] = (0, 0)  # characters of the completion that state the plan's choice


def chain_text(world: World, q: Question) -> str:
    """``Ber mentor Zin #12. Zin rival Kog #37`` — each fact as its document states it (no id where its
    passage is missing). No full stop after the last: the plan's first word follows the last fact's id
    directly, so "is that document in my history?" is decided at the id itself (a one-layer check)."""
    return ". ".join(world.kb.doc(f) or f.text for f in world.chain(q))


def imagined_candidates(world: World, query: str) -> list[str]:
    """What a turn imagines ``query`` returns: every candidate in rank order (any of them may come back;
    the analysis then names the last fact's rank among them)."""
    return list(world.retriever.candidates(query))


def search_text(world: World, query: str) -> str:
    """``search q: 1 c1; 2 c2`` — :func:`imagined_candidates` written out, numbered by rank."""
    numbered = [f"{i} {c}" for i, c in enumerate(imagined_candidates(world, query), 1)]
    return f"search {query}: {'; '.join(numbered) if numbered else 'nothing'}"


def analysis_for(world: World, state: State, plan: Plan) -> str:
    """``#37 found`` / ``#37 not found`` (an answer), ``#37 rank 2, steps 2`` (a search): the last
    fact's document id (none when its passage is missing), then the check made at it."""
    last = world.last_fact(state.question)
    doc = world.kb.doc(last) if last is not None else None
    head = f"#{split_document(doc)[1]} " if doc is not None else ""
    if plan.query is None:
        return head + ("found" if world.supported(state) else "not found")
    rank = world.retriever.rank(plan.query, doc) if doc is not None else None
    return f"{head}rank {rank if rank is not None else 'none'}, steps {state.steps}"


def make_turn(world: World, state: State, plan: Plan, optimal: bool = False) -> Example:
    chain = chain_text(world, state.question)
    if plan.query is None:
        choice = "found" if world.supported(state) or plan.claims_found else "answer"
        action = f"<think>answer {plan.answer}</think>\n<answer>{plan.answer}</answer>"
    else:
        choice = search_text(world, plan.query)
        action = f"<think>search {plan.query}</think>\n<search>{plan.query}</search>"
    p = round(world.plan_success(state, plan.query, plan.answer), 2)
    head = f"<imaginary>{chain} "
    text = (f"{head}{choice}</imaginary>\n<analysis>{analysis_for(world, state, plan)}</analysis>\n"
            f"<confidence>{format_confidence(p)}</confidence>\n{action}")
    end = len(head) + (len(choice.split(":")[0]) if plan.query else len(choice))
    # from the space before the choice: " search" is one token
    return Example(prompt_for(state), text, state, plan, p, optimal, (len(head) - 1, end))


def imagined_observation(world: World, state: State, query: str) -> str:
    """What a search returns when nothing is lost (what lookahead imagines)."""
    cands = world.retriever.candidates(query)
    return f"<information>{observation(cands[0] if cands else None, state.steps - 1)}</information>"


def with_observation(world: World, ex: Example) -> Example:
    if ex.plan.query is None:
        return ex
    text = ex.completion + "\n" + imagined_observation(world, ex.state, ex.plan.query)
    return Example(ex.prompt, text, ex.state, ex.plan, ex.confidence, ex.optimal, ex.policy_span)


def sample_plan(world: World, state: State, rng: random.Random) -> tuple[Plan, bool]:
    """A plan from the prior :data:`PLAN_MIX` and whether it is the optimal policy's."""
    answer = world.answer(state.question) or ""
    best = world.optimal_action(state)
    if world.supported(state) or state.steps <= 0:
        return Plan(None, answer), best.kind == "answer"
    last = world.last_fact(state.question)
    assert last is not None
    r, acc, source = rng.random(), 0.0, "random"
    for name, share in PLAN_MIX.items():
        acc += share
        if r < acc:
            source = name
            break
    if source == "answer" or (source == "found" and not state.observed):
        return Plan(None, answer), False
    if source == "found":
        return Plan(None, answer, claims_found=True), False
    if source == "best":
        query = best.text
    elif source == "other":
        query = next((q for q in world.fact_queries(last) if q != best.text), best.text)
    elif source == "reactive":
        walked = world.reactive_action(state)
        if walked.kind == "answer":  # it read a value off a passage that does not support the answer
            return Plan(None, answer), False
        query = walked.text
    else:
        query = f"{rng.choice(world.kb.entities)} {rng.choice(RELATIONS)}"
    return Plan(query, answer), _same_value(world, state, query, best)


def _same_value(world: World, state: State, query: str, best: Action) -> bool:
    """A query as good as the optimal one (ties teach the policy too)."""
    return abs(world.q_value(state, Action("search", query)) - world.q_value(state, best)) < 1e-12


def near_miss_state(world: World, state: State, rng: random.Random) -> State:
    """The state's question with one or two searches made, each returning one of the passages searches
    near its chain return (every such history is reachable: a candidate comes back when those above it
    are lost)."""
    chain = world.chain(state.question)
    queries = [q for f in chain for q in world.fact_queries(f)]
    observed: list[str | None] = []
    for _ in range(rng.choice((1, 2))):
        r = rng.random()
        if r < 0.35:  # the last fact's own document (every question asked has one)
            observed.append(world.kb.doc(chain[-1]))
            continue
        cands = world.retriever.candidates(rng.choice(queries))
        observed.append(rng.choice(cands) if cands and r < 0.9 else None)
    return State(state.question, env.STEPS - len(observed), tuple(observed))


def stage_examples(stage: int, count: int, seed: int, heldout: bool = False,
                   world: World | None = None) -> list[Example]:
    """``count`` examples of stage 1 (the imaginary span only), 2 (turns) or 3 (turns, calibration)."""
    world = world or World()
    rng = random.Random(seed * 1000 + stage + 500)
    states: Iterator[State] = env.visited_states(world, rng, heldout)
    out: list[Example] = []
    for _ in range(count):
        state = next(states)
        if rng.random() < NEAR_MISS_SHARE:
            state = near_miss_state(world, state, rng)
        plan, optimal = sample_plan(world, state, rng)
        ex = make_turn(world, state, plan, optimal)
        if stage == 1:
            imaginary = ex.completion.split("</imaginary>")[0] + "</imaginary>"
            out.append(Example(ex.prompt, imaginary, state, plan, 0.0, optimal, ex.policy_span))
            continue
        out.append(with_observation(world, ex) if rng.random() < OBSERVATION_SHARE else ex)
    return out
