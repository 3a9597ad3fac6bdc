"""The search world: its knowledge base, its noisy BM25 search and the exact oracle agree with
what actually happens when episodes are played."""

from __future__ import annotations

import random

import pytest

from reference.search import env, kb, retrieval
from reference.search.env import Action, Question, State, World


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def test_knowledge_base_is_seeded_complete_and_imperfect(world: World) -> None:
    again = kb.generate()
    assert again.passages == world.kb.passages and again.facts == world.kb.facts
    assert len(world.kb.facts) == len(kb.ENTITY_NAMES) * len(kb.RELATIONS)
    assert all(v != s and v in world.kb.entities for (s, _r), v in world.kb.facts.items())
    facts = [world.kb.fact(s, r) for s, r in world.kb.facts]
    missing = [f for f in facts if not world.kb.stated(f)]
    assert len(missing) == int(len(facts) * kb.MISSING_SHARE)
    misleading = [p for p in world.kb.passages if p not in {world.kb.doc(f) for f in facts}]
    assert len(misleading) == int(len(facts) * kb.MISLEADING_SHARE)
    for p in misleading:  # a wrong value for a real subject and relation
        s, r, v = kb.split_document(p)[0].split()
        assert world.kb.value(s, r) != v


def test_every_passage_is_a_document_with_its_own_id(world: World) -> None:
    ids = [kb.split_document(p)[1] for p in world.kb.passages]
    assert sorted(ids) == list(range(len(world.kb.passages)))
    fact = next(f for f in (world.kb.fact(s, r) for s, r in world.kb.facts) if world.kb.stated(f))
    doc = world.kb.doc(fact)
    assert doc is not None and doc.startswith(fact.text + " #") and doc in world.kb.passages
    for bad in ("Bak mentor Dor", "Bak mentor Dor #", "Bak mentor Dor #x"):
        with pytest.raises(ValueError, match="not a document"):
            kb.split_document(bad)


def test_drift_updates_renames_and_removes() -> None:
    base = kb.generate()
    moved, d = kb.drift(base)
    assert kb.drift(base)[0].passages == moved.passages  # seeded
    assert len(d.updated) == int(len(base.facts) * kb.DRIFT_UPDATED)
    assert len(d.renamed) == int(len(base.entities) * kb.DRIFT_RENAMED)
    assert not set(d.renamed.values()) & set(kb.ENTITY_NAMES)
    for old, new in d.renamed.items():
        assert old not in moved.entities and new in moved.entities
        assert not any(old in p.split() for p in moved.passages)
    changed = [(s, r) for (s, r) in d.updated]
    rename = {v: k for k, v in d.renamed.items()}
    for s, r in changed:
        assert moved.value(s, r) != d.renamed.get(base.value(rename.get(s, s), r), base.value(rename.get(s, s), r))
    assert d.removed and not d.removed & set(moved.passages)
    before = {kb.split_document(p)[1]: kb.split_document(p)[0] for p in base.passages}
    rewritten = 0
    for p in moved.passages:  # a document keeps its id while its text does; a rewritten one gets a new id
        text, doc_id = kb.split_document(p)
        if doc_id in before:
            assert before[doc_id] == text
        else:
            rewritten += 1
            assert doc_id >= len(base.passages)
    ids = [kb.split_document(p)[1] for p in moved.passages]
    assert rewritten and len(set(ids)) == len(ids)


@pytest.mark.parametrize("seed", range(1, 9))
def test_drifted_ids_stay_whole_tokens_and_texts_unique(seed: int) -> None:
    """Ids past the tokenizer's whole tokens would split (#256 → #25 + 6) and match another document's id."""
    from reference.search.tokens import MAX_DOCUMENTS

    moved, _ = kb.drift(kb.generate(), seed=seed, updated=0.3, renamed=0.15)
    twice, _ = kb.drift(moved, seed=seed + 100)
    for world_kb in (moved, twice):
        texts = [kb.split_document(p)[0] for p in world_kb.passages]
        assert len(set(texts)) == len(texts)
        assert max(kb.split_document(p)[1] for p in world_kb.passages) < MAX_DOCUMENTS


def test_inclusion_probability_matches_noisy_searches(world: World) -> None:
    rng = random.Random(5)
    last = world.last_fact(world.questions[17])
    assert last is not None
    doc = world.kb.doc(last)
    assert doc is not None
    for query in world.fact_queries(last):
        p = world.retriever.inclusion(query, doc)
        hits = sum(doc in world.retriever.search(query, rng) for _ in range(4000))
        assert hits / 4000 == pytest.approx(p, abs=0.03), query


def test_survival_by_rank() -> None:
    assert retrieval.survival(1) == pytest.approx(1 - retrieval.LOSS)
    assert retrieval.survival(2) == pytest.approx((1 - retrieval.LOSS) * retrieval.LOSS ** retrieval.TOP_K)
    assert all(retrieval.survival(r) > retrieval.survival(r + 1) for r in range(1, retrieval.CANDIDATES))


def test_candidates_share_a_word_and_rank_ties_in_corpus_order(world: World) -> None:
    query = f"{world.kb.entities[3]} rival"
    cands = world.retriever.candidates(query)
    assert 0 < len(cands) <= retrieval.CANDIDATES
    assert all(set(c.lower().split()) & set(query.lower().split()) for c in cands)
    both = [c for c in cands if world.kb.entities[3] in c.split() and "rival" in c.split()]
    assert tuple(both) == cands[: len(both)]  # the passages with both words come first...
    order = [world.kb.passages.index(c) for c in both]
    assert order == sorted(order)  # ...in corpus order (equal BM25 scores)
    assert world.retriever.candidates("Nobody knows") == ()


def _play(world: World, start: State, policy, rng: random.Random) -> bool:  # type: ignore[no-untyped-def]
    state = start
    while not world.done(state):
        state, _ = world.step(state, policy(state), rng)
    return world.success(state)


def test_plan_chance_and_optimal_value_match_played_episodes(world: World) -> None:
    rng = random.Random(9)
    starts = env.balanced_starts(world, True, 12, random.Random(1))
    for start in starts:
        q = start.question
        last = world.last_fact(q)
        assert last is not None
        query = world.fact_queries(last)[0]

        def plan(state: State, query: str = query) -> Action:
            return Action("answer", world.answer(state.question) or "") if world.supported(state) \
                else Action("search", query)

        wins = sum(_play(world, start, plan, rng) for _ in range(600))
        assert wins / 600 == pytest.approx(world.plan_success(start, query, world.answer(q) or ""), abs=0.06)
        opt = sum(_play(world, start, world.optimal_action, rng) for _ in range(600))
        assert opt / 600 == pytest.approx(world.value(start), abs=0.06)


def test_value_is_the_best_action_value(world: World) -> None:
    queries = [f"{e} {r}" for e in world.kb.entities[:8] for r in kb.RELATIONS]
    for start in env.balanced_starts(world, False, 30, random.Random(2)):
        best = world.optimal_action(start)
        assert world.q_value(start, best) == pytest.approx(world.value(start))
        assert all(world.q_value(start, Action("search", q)) <= world.value(start) + 1e-12 for q in queries)
        assert 0.0 < world.value(start) < 1.0


def test_an_answer_counts_only_when_right_and_supported(world: World) -> None:
    q = next(q for q in world.questions if len(q.relations) == 2)
    truth = world.answer(q) or ""
    start = State(q, env.STEPS)
    rng = random.Random(0)
    assert not world.success(world.step(start, Action("answer", truth), rng)[0])  # unsupported
    last = world.last_fact(q)
    assert last is not None
    seen = State(q, 2, (world.kb.doc(last),))
    assert world.supported(seen) and world.plan_success(seen, None, truth) == 1.0
    assert world.success(world.step(seen, Action("answer", truth), rng)[0])
    assert not world.success(world.step(seen, Action("answer", "Nobody"), rng)[0])


def test_reactive_agent_walks_the_chain_by_subjects(world: World) -> None:
    q = next(q for q in world.questions if len(q.relations) == 3)
    first = world.chain(q)[0]
    assert world.reactive_action(State(q, 3)) == Action("search", f"{q.start} {q.relations[0]}")
    after = State(q, 2, (world.kb.doc(first) or kb.document(first.text, 999),))
    assert world.reactive_action(after) == Action("search", f"{first.value} {q.relations[1]}")


def test_heldout_questions_are_kept_apart(world: World) -> None:
    held = env.heldout_questions(world)
    assert len(held) == int(len(world.questions) * env.HELDOUT_FRACTION)
    assert all(s.question in held for s in env.start_states(world, True))
    assert not any(s.question in held for s in env.start_states(world, False))
    assert all(world.answerable(q) for q in world.questions)
    assert {len(q.relations) for q in held} == set(env.HOPS)
    assert Question("Nobody", ("mentor",)) not in world.questions


def test_stale_questions_are_those_the_change_touched() -> None:
    old = World()
    moved, d = kb.drift(old.kb)
    new = World(moved)
    starts = env.drifted_starts(old, d)
    flags = [env.stale(old, new, d, s) for s in starts]
    assert 0.3 < sum(flags) / len(flags) < 0.7
    for s, flag in zip(starts, flags, strict=True):
        if not flag:  # nothing it learnt changed: same answer, still answerable, same chances
            back = {v: k for k, v in d.renamed.items()}
            original = State(Question(back.get(s.question.start, s.question.start), s.question.relations), s.steps)
            assert new.answer(s.question) == old.answer(original.question) and new.answerable(s.question)
        else:
            assert any(f.subject in d.renamed.values() or f.value in d.renamed.values() or
                       (f.subject, f.relation) in d.updated for f in new.chain(s.question)) \
                or not new.answerable(s.question)


def test_drift_bench_plans_as_the_planner_configuration() -> None:
    """bench/drift.py sends reference.search.planning's branch_commit as a request: the same parameters."""
    import importlib.util
    import sys

    from planner.params import from_mapping
    from planner.search import PlanConfig
    from reference.search.planning import PLANNERS
    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location("drift_bench", REPO / "bench" / "drift.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look themselves up there
    try:
        spec.loader.exec_module(bench)
    finally:
        del sys.modules[spec.name]
    assert from_mapping(PlanConfig, bench.BRANCH_COMMIT) == PLANNERS["branch_commit"]


def test_only_queries_of_the_grammar_search_and_none_after_the_last_step(world: World) -> None:
    q = next(q for q in world.questions if len(q.relations) == 2)
    last = world.last_fact(q)
    assert last is not None
    for bad in (last.text, f"{last.subject}.{last.value} {last.relation}", f"{last.subject} {last.relation} x"):
        assert env.parse_query(bad) is None
        assert world.query_success(q, bad) == 0.0
        assert world.q_value(State(q, 2), Action("search", bad)) == world.value(State(q, 1))
    supported_no_steps = State(q, 0, (world.kb.doc(last),))
    assert world.q_value(supported_no_steps, Action("search", world.fact_queries(last)[0])) == 0.0
    after, _ = world.step(supported_no_steps, Action("search", world.fact_queries(last)[0]), random.Random(0))
    assert world.done(after) and not world.success(after)
