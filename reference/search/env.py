"""The search world's episodes and its exact oracle.

A question names a start entity and a chain of two to four relations (``Bak mentor rival ?``:
the rival of Bak's mentor); its answer is the chain's last value. The agent has
:data:`STEPS` searches; ``<search>entity relation</search>`` returns what
:class:`reference.search.retrieval.Retriever` returns, and ``<answer>entity</answer>`` ends the
episode. An answer counts only when it is right **and supported**: the passage stating the
chain's last fact was returned by one of the episode's searches (a grounded answer, as an app
that must cite its source requires). Only questions whose last fact has a passage are asked.

The oracle: a search succeeds when it returns the last fact's passage, with the exact
probability :meth:`Retriever.inclusion`; searches are independent, so the optimal policy
searches with the best query for the last fact until it comes back (an agent that knows the
chain need not walk it), and a plan "search ``q`` until it returns the passage, then answer
``a``" succeeds with ``[a right] · (1 − (1 − p_q)^steps)``. Pure Python beside ``bm25s``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from reference.search.kb import RELATIONS, Drift, Fact, KnowledgeBase, generate, split_document
from reference.search.retrieval import Retriever

STEPS = 3
HOPS = (2, 3, 4)
HELDOUT_FRACTION = 0.15
SPLIT_SEED = 20261206


@dataclass(frozen=True)
class Question:
    start: str
    relations: tuple[str, ...]

    @property
    def text(self) -> str:
        return f"{self.start} {' '.join(self.relations)} ?"

    def renamed(self, names: dict[str, str]) -> Question:
        return Question(names.get(self.start, self.start), self.relations)


@dataclass(frozen=True)
class State:
    """Where an episode stands: the question, searches left, every passage returned so far
    (``None`` in a search's place when it returned nothing)."""

    question: Question
    steps: int
    observed: tuple[str | None, ...] = ()
    answered: str | None = None


@dataclass(frozen=True)
class Action:
    kind: str  # "search" | "answer"
    text: str  # the query or the answer


def parse_query(query: str) -> tuple[str, str] | None:
    """``entity relation`` from a query in the grammar; None if it is not one."""
    parts = query.split()
    if len(parts) != 2 or not parts[0].isalpha() or parts[1] not in RELATIONS:
        return None
    return parts[0], parts[1]


class World:
    """One knowledge base, its search engine and the oracle over it."""

    def __init__(self, kb: KnowledgeBase | None = None) -> None:
        self.kb = kb or generate()
        self.retriever = Retriever(self.kb)

    # -------------------------------------------------------------- facts
    def chain(self, q: Question) -> list[Fact]:
        """The question's facts, hop by hop."""
        facts: list[Fact] = []
        entity = q.start
        for r in q.relations:
            if (entity, r) not in self.kb.facts:
                return facts
            facts.append(self.kb.fact(entity, r))
            entity = facts[-1].value
        return facts

    def answer(self, q: Question) -> str | None:
        chain = self.chain(q)
        return chain[-1].value if len(chain) == len(q.relations) else None

    def last_fact(self, q: Question) -> Fact | None:
        chain = self.chain(q)
        return chain[-1] if len(chain) == len(q.relations) else None

    def answerable(self, q: Question) -> bool:
        last = self.last_fact(q)
        return last is not None and self.kb.stated(last)

    def supported(self, state: State) -> bool:
        last = self.last_fact(state.question)
        doc = self.kb.doc(last) if last is not None else None
        return doc is not None and doc in state.observed

    # -------------------------------------------------------------- dynamics
    def done(self, state: State) -> bool:
        return state.answered is not None or (state.steps <= 0 and not self.supported(state))

    def success(self, state: State) -> bool:
        return state.answered is not None and state.answered == self.answer(state.question) and self.supported(state)

    def step(self, state: State, action: Action, rng: random.Random) -> tuple[State, list[str]]:
        """The next state and what the environment showed (the passages a search returned)."""
        if self.done(state):
            raise ValueError("episode is over")
        if action.kind == "answer" or state.steps <= 0:
            answered = action.text if action.kind == "answer" else ""
            return State(state.question, state.steps, state.observed, answered), []
        found = self.retriever.search(action.text, rng) if parse_query(action.text) else []
        return State(state.question, state.steps - 1, state.observed + (tuple(found) or (None,))), found

    # -------------------------------------------------------------- oracle
    def query_success(self, q: Question, query: str) -> float:
        """Exact probability that one search for ``query`` returns the question's last fact."""
        last = self.last_fact(q)
        doc = self.kb.doc(last) if last is not None else None
        if doc is None or parse_query(query) is None:  # not a query of the grammar: the world does not search
            return 0.0
        return self.retriever.inclusion(query, doc)

    def fact_queries(self, fact: Fact) -> tuple[str, str]:
        """The two queries of the grammar that name a fact: by its subject and by its value."""
        return f"{fact.subject} {fact.relation}", f"{fact.value} {fact.relation}"

    def best_query(self, q: Question) -> str | None:
        """The query most likely to return the last fact (subject first on ties); None if none can."""
        last = self.last_fact(q)
        if last is None:
            return None
        best = max(self.fact_queries(last), key=lambda s: self.query_success(q, s))
        return best if self.query_success(q, best) > 0 else None

    def plan_success(self, state: State, query: str | None, answer: str) -> float:
        """Exact chance of "search ``query`` until it returns the last fact, then answer ``answer``"
        (``query`` None: answer now)."""
        if answer != self.answer(state.question):
            return 0.0
        if self.supported(state):
            return 1.0
        if query is None:
            return 0.0
        p = self.query_success(state.question, query)
        return 1.0 - (1.0 - p) ** max(state.steps, 0)

    def value(self, state: State) -> float:
        """The optimal policy's exact chance of success from ``state``."""
        if state.answered is not None:
            return float(self.success(state))
        if self.supported(state):
            return 1.0
        best = self.best_query(state.question)
        return self.plan_success(state, best, self.answer(state.question) or "") if best else 0.0

    def q_value(self, state: State, action: Action) -> float:
        """Exact chance of success of ``action`` now, the optimal policy afterwards."""
        if action.kind == "answer":
            return float(action.text == self.answer(state.question) and self.supported(state))
        if state.steps <= 0:  # no search left: the environment ends the episode unanswered
            return 0.0
        if self.supported(state):
            return self.value(State(state.question, state.steps - 1, state.observed))
        p = self.query_success(state.question, action.text) if parse_query(action.text) else 0.0
        after = State(state.question, state.steps - 1, (*state.observed, None))
        return p + (1.0 - p) * self.value(after)

    def optimal_action(self, state: State) -> Action:
        if self.supported(state):
            return Action("answer", self.answer(state.question) or "")
        q = state.question
        return Action("search", self.best_query(q) or f"{q.start} {q.relations[0]}")

    # -------------------------------------------------------------- baselines
    def reactive_action(self, state: State) -> Action:
        """An agent with no world model: walks the chain from the question, searching each hop by its
        subject, reading values off the passages returned; answers once it read the last one."""
        entity = state.question.start
        for r in state.question.relations:
            value = _read(state.observed, entity, r)
            if value is None:
                return Action("search", f"{entity} {r}")
            entity = value
        return Action("answer", entity)

    # -------------------------------------------------------------- questions and split
    @cached_property
    def questions(self) -> tuple[Question, ...]:
        out = []
        for hops in HOPS:
            for e in self.kb.entities:
                for rels in itertools.product(RELATIONS, repeat=hops):
                    q = Question(e, rels)
                    if self.answerable(q):
                        out.append(q)
        return tuple(out)


def _read(observed: tuple[str | None, ...], subject: str, relation: str) -> str | None:
    """The value a returned passage gives for ``subject relation`` (the latest one read)."""
    value = None
    for p in observed:
        try:
            words = split_document(p)[0].split(" ") if p is not None else []
        except ValueError:  # text the world did not return
            continue
        if len(words) == 3 and words[0] == subject and words[1] == relation:
            value = words[2]
    return value


def heldout_questions(world: World, seed: int = SPLIT_SEED) -> frozenset[Question]:
    """A seeded :data:`HELDOUT_FRACTION` of the (start, chain) questions, kept out of training."""
    qs = sorted(world.questions, key=lambda q: (len(q.relations), q.start, q.relations))
    rng = random.Random(seed)
    rng.shuffle(qs)
    return frozenset(qs[: int(len(qs) * HELDOUT_FRACTION)])


def start_states(world: World, heldout: bool) -> list[State]:
    """Every episode start on one side of the split."""
    held = heldout_questions(world)
    return [State(q, STEPS) for q in world.questions if (q in held) == heldout]


def balanced_starts(world: World, heldout: bool, count: int, rng: random.Random,
                    pool: list[State] | None = None) -> list[State]:
    """``count`` starts (from ``pool``, default the world's side of the split) with as many questions of
    each length (two, three, four hops)."""
    pool = pool if pool is not None else start_states(world, heldout)
    by_hops = {h: [s for s in pool if len(s.question.relations) == h] for h in HOPS}
    return [rng.choice(by_hops[HOPS[i % len(HOPS)]]) for i in range(count)]


def drifted_starts(old: World, d: Drift, heldout: bool = True) -> list[State]:
    """The same questions asked in the world after ``d`` (renamed where their start was): some are now
    answered otherwise, some not at all (their last passage was removed)."""
    return [State(s.question.renamed(d.renamed), s.steps) for s in start_states(old, heldout)]


def stale(old: World, new: World, d: Drift, state: State) -> bool:
    """Whether what the model learnt about this question no longer holds in the new world: a fact of its
    chain changed (updated or renamed), or its last fact's passage is gone."""
    back = {v: k for k, v in d.renamed.items()}
    original = Question(back.get(state.question.start, state.question.start), state.question.relations)
    then = [(d.renamed.get(f.subject, f.subject), f.relation, d.renamed.get(f.value, f.value))
            for f in old.chain(original)]
    now = new.chain(state.question)
    renamed = any(f.subject in back or f.value in back for f in now)
    return renamed or then != [(f.subject, f.relation, f.value) for f in now] or not new.answerable(state.question)


def visited_states(world: World, rng: random.Random, heldout: bool,
                   starts: list[State] | None = None) -> Iterator[State]:
    """States met in episodes played by a mix of policies (optimal, reactive, random searches), from
    starts on one side of the split (or from ``starts``), as many of each question length."""
    queries = [f"{e} {r}" for e in world.kb.entities for r in RELATIONS]
    pool = starts if starts is not None else start_states(world, heldout)
    by_hops = [[s for s in pool if len(s.question.relations) == h] for h in HOPS]
    while True:
        state = rng.choice(rng.choice(by_hops))
        mode = rng.random()
        while not world.done(state):
            yield state
            if mode < 0.4:
                action = world.optimal_action(state)
            elif mode < 0.7:
                action = world.reactive_action(state)
            else:
                action = Action("search", rng.choice(queries)) if state.steps > 0 else world.optimal_action(state)
            state, _ = world.step(state, action, rng)
