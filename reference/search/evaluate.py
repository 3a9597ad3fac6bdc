"""Evaluate a search-world checkpoint against the exact oracle, through the real engine.

* **turns** on held-out states (one sample each, temperature 1): format validity, whether the
  imagined chain of facts is the knowledge base's (with its documents' ids), whether the imagined
  search results are what the search engine ranks, and the confidence's Brier score and ECE against
  the plan it wrote — beside the Brier score of the exact probabilities of the same plans (the floor);
* **episodes** from held-out questions (as many of two, three and four hops): success of random
  searches, the reactive chain-walker, the model greedy, the model best-of-N (highest confidence)
  and the exact optimum — each also as a paired estimate: the optimum's exact value from the same
  starts plus the mean of the episode's exact advantages ``Q*(s, a) − V*(s)`` (unbiased, far less
  noisy than a success rate). Pass another :class:`World` (:func:`reference.search.kb.drift`) to
  evaluate the same model on a world that changed.
"""

from __future__ import annotations

import asyncio
import random
import re
import sys
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from tqdm import tqdm

from engine.base import Engine, GenerationRequest
from planner.calibration_math import expected_calibration_error
from planner.format import ACTION_STOPS, Turn, parse_turn
from reference.planning import mean_se
from reference.search import data, env
from reference.search.env import Action, State, World
from reference.search.kb import RELATIONS

TURN_MAX_TOKENS = 128
POLICIES = ("random", "reactive", "model_greedy", "model_best_of_n", "optimal")
_FACT_RE = re.compile(r"(\S+) (\w+) (\w+)( #\d+)?")


@dataclass
class SearchTurnMetrics:
    """Quality of single turns on held-out states."""

    states: int = 0
    format_validity: float = 0.0
    chain_accuracy: float = 0.0  # the imagined chain is the knowledge base's, document ids included
    result_accuracy: float = 0.0  # the imagined search results are what the engine ranks (search turns)
    confidence_brier: float = 0.0
    exact_brier: float = 0.0
    brier_gap: float = 0.0
    confidence_ece: float = 0.0


@dataclass
class SearchEvalResult:
    """Everything ``foresight reference eval --world search`` reports."""

    model: str
    seed: int
    turns: SearchTurnMetrics
    episodes: int
    best_of_n: int
    world: str = "search"
    temperature: float = 1.0
    split: str = "heldout"
    success: dict[str, float] = field(default_factory=dict)
    # the paired estimate of each policy's success and its standard error
    paired: dict[str, tuple[float, float]] = field(default_factory=dict)
    planner_tokens: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _imagined_facts(imaginary: str | None) -> list[re.Match[str]]:
    """The chain's facts (``subject relation value #id``, joined by ``. ``) before the plan."""
    head = re.split(r"\b(?:search|answer|found)\b", imaginary or "", maxsplit=1)[0]
    facts = (_FACT_RE.fullmatch(part.strip()) for part in head.split("."))
    return [m for m in facts if m is not None and m.group(2) in RELATIONS]


def imagined_documents(imaginary: str | None) -> list[str]:
    """The facts a turn imagined before its plan, as written (with the document id where it wrote one)."""
    return [m.group(0) for m in _imagined_facts(imaginary)]


def imagined_chain(imaginary: str | None) -> list[tuple[str, str, str]]:
    """The ``subject relation value`` facts a turn imagined, before its plan."""
    return [(m.group(1), m.group(2), m.group(3)) for m in _imagined_facts(imaginary)]


def imagined_results(imaginary: str | None) -> tuple[str, list[str]] | None:
    """The query a turn plans and the results it imagines, without their rank numbers (a result whose
    number is not its place in the list keeps it, so it matches no document); None if it plans no search."""
    m = re.search(r"\bsearch (.+?):(.*)$", imaginary or "", re.S)
    if not m:
        return None
    listed = [p for p in (part.strip() for part in m.group(2).split(";")) if p and p != "nothing"]
    results = [p.removeprefix(f"{i} ") for i, p in enumerate(listed, 1)]
    return m.group(1).strip(), results


def turn_action(turn: Turn) -> Action | None:
    """The environment action a turn takes (None: no usable action)."""
    if turn.action is None or turn.action.kind not in ("search", "answer"):
        return None
    return Action(turn.action.kind, " ".join(turn.action.content.split()))


def plan_of(turn: Turn) -> tuple[str | None, str] | None:
    """(query or None, answer) the turn plans: its action and the last value its chain imagines."""
    action = turn_action(turn)
    if action is None:
        return None
    if action.kind == "answer":
        return None, action.text
    chain = imagined_chain(turn.imaginary)
    return action.text, chain[-1][2] if chain else ""


def score_turn(world: World, state: State, turn: Turn) -> dict[str, float]:
    truth = [world.kb.doc(f) or f.text for f in world.chain(state.question)]
    plan = plan_of(turn)
    p = world.plan_success(state, plan[0], plan[1]) if plan else 0.0
    c = turn.confidence if turn.confidence is not None else 0.5
    imagined = imagined_results(turn.imaginary)
    scores = {
        "valid": float(turn.is_valid and plan is not None),
        "chain": float(imagined_documents(turn.imaginary) == truth),  # the facts and their documents' ids
        "brier": p * (1 - c) ** 2 + (1 - p) * c**2,
        "exact_brier": p * (1 - p),
        "p": p,
        "c": c,
    }
    if imagined is not None:
        query, results = imagined
        scores["results"] = float(results == data.imagined_candidates(world, query))
    return scores


def _progress(total: int, desc: str, show: bool) -> tqdm:
    return tqdm(total=total, desc=desc, file=sys.stderr, disable=not show, leave=False)


async def sample_turns(engine: Engine, state: State, n: int, temperature: float, seed: int | None = None) -> list[str]:
    """``n`` generated turns for one state (one engine call)."""
    req = GenerationRequest(engine.encode(data.prompt_for(state)), n=n, max_tokens=TURN_MAX_TOKENS,
                            temperature=temperature, stop=ACTION_STOPS, include_stop_str_in_output=True, seed=seed)
    texts = [""] * n
    async for chunk in engine.generate(req, f"eval-{uuid.uuid4().hex}"):
        for d in chunk.deltas:
            texts[d.index] += d.text
    return texts


async def evaluate_turns(engine: Engine, world: World, count: int, seed: int, show: bool = True,
                         concurrency: int = 32, heldout: bool = True,
                         starts: list[State] | None = None) -> SearchTurnMetrics:
    rng = random.Random(seed)
    states = env.visited_states(world, rng, heldout, starts=starts)
    picked = [next(states) for _ in range(count)]
    sem = asyncio.Semaphore(concurrency)
    scores: list[dict[str, float]] = [{} for _ in picked]  # in state order: the outcomes drawn below are seeded
    bar = _progress(count, "turns", show)

    async def one(i: int, s: State) -> None:
        async with sem:
            (text,) = await sample_turns(engine, s, 1, 1.0, seed=seed * 100_000 + i)
        scores[i] = score_turn(world, s, parse_turn(text))
        bar.update(1)

    await asyncio.gather(*(one(i, s) for i, s in enumerate(picked)))
    bar.close()

    def mean(k: str) -> float:
        xs = [s[k] for s in scores if k in s]
        return sum(xs) / len(xs) if xs else 0.0

    outcome_rng = random.Random(seed + 1)
    outcomes = [outcome_rng.random() < s["p"] for s in scores]
    return SearchTurnMetrics(
        states=len(scores), format_validity=mean("valid"), chain_accuracy=mean("chain"),
        result_accuracy=mean("results"), confidence_brier=mean("brier"), exact_brier=mean("exact_brier"),
        brier_gap=mean("brier") - mean("exact_brier"),
        confidence_ece=expected_calibration_error([s["c"] for s in scores], outcomes),
    )


async def model_action(engine: Engine, state: State, n: int, rng: random.Random,
                       temperature: float = 1.0) -> Action | None:
    """Greedy (``n`` 1) or best-of-``n`` by the turns' confidence."""
    if n == 1:
        (text,) = await sample_turns(engine, state, 1, 0.0)
        return turn_action(parse_turn(text))
    turns = [parse_turn(t) for t in await sample_turns(engine, state, n, temperature, seed=rng.randrange(2**31))]
    usable = [t for t in turns if turn_action(t) is not None]
    if not usable:
        return None
    return turn_action(max(usable, key=lambda t: -1.0 if t.confidence is None else t.confidence))


async def run_episodes(engine: Engine | None, world: World, policy: str, starts: list[State], seed: int,
                       best_of_n: int = 8, show: bool = True, concurrency: int = 32,
                       temperature: float = 1.0) -> tuple[float, list[float]]:
    """Success rate of one policy over ``starts`` and, per episode, its paired estimate."""
    sem = asyncio.Semaphore(concurrency)
    bar = _progress(len(starts), policy, show)
    queries = [f"{e} {r}" for e in world.kb.entities for r in RELATIONS]

    async def choose(state: State, rng: random.Random) -> Action | None:
        if policy == "random":
            return Action("search", rng.choice(queries)) if state.steps > 0 else Action("answer", "")
        if policy == "reactive":
            return world.reactive_action(state)
        if policy == "optimal":
            return world.optimal_action(state)
        assert engine is not None
        async with sem:
            n = 1 if policy == "model_greedy" else best_of_n
            return await model_action(engine, state, n, rng, temperature)

    async def episode(i: int, start: State) -> tuple[bool, float]:
        rng = random.Random(seed * 7919 + i)
        state, estimate = start, world.value(start)
        while not world.done(state):
            action = await choose(state, rng)
            if action is None:
                estimate -= world.value(state)
                break
            estimate += world.q_value(state, action) - world.value(state)
            state, _ = world.step(state, action, rng)
        bar.update(1)
        return world.success(state), estimate

    results = await asyncio.gather(*(episode(i, s) for i, s in enumerate(starts)))
    bar.close()
    return sum(ok for ok, _ in results) / max(len(results), 1), [e for _, e in results]


async def evaluate(engine: Engine, *, episodes: int = 200, states: int = 300, seed: int = 0, best_of_n: int = 8,
                   show: bool = True, policies: tuple[str, ...] = POLICIES, temperature: float = 1.0,
                   heldout: bool = True, world: World | None = None, world_name: str = "search",
                   pool: list[State] | None = None) -> SearchEvalResult:
    """Turn metrics and episode success on held-out questions of ``world`` (default: the one trained on);
    ``pool``: the episode starts to draw from instead (a changed world's: the same questions, renamed)."""
    world = world or World()
    starts = env.balanced_starts(world, heldout, episodes, random.Random(seed), pool=pool)
    turns = (await evaluate_turns(engine, world, states, seed, show, heldout=heldout, starts=pool) if states
             else SearchTurnMetrics())
    result = SearchEvalResult(model=engine.info.name, seed=seed, turns=turns, episodes=episodes, best_of_n=best_of_n,
                              world=world_name, temperature=temperature, split="heldout" if heldout else "train")
    for policy in policies if starts else ():
        rate, estimates = await run_episodes(engine, world, policy, starts, seed, best_of_n, show,
                                             temperature=temperature)
        result.success[policy] = rate
        result.paired[policy] = mean_se(estimates)
    return result
