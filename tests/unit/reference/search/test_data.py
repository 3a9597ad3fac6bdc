"""The search world's turns parse with the project's parser, say what the oracle says, and the
chat template gives the model the prompt it was trained on."""

from __future__ import annotations

import jinja2
import pytest

from planner import parse_turn
from reference.search import data, env, kb
from reference.search.env import World
from reference.search.evaluate import imagined_chain, imagined_results, plan_of, score_turn
from reference.search.tokens import CHAT_TEMPLATE, WHOLE_TOKENS
from reference.tokenizer import build_tokenizer
from reference.train import _encode
from reference.worlds import world_spec


@pytest.fixture(scope="module")
def world() -> World:
    return World()


@pytest.mark.parametrize("stage", [2, 3])
def test_every_turn_parses_and_its_confidence_is_the_exact_chance(world: World, stage: int) -> None:
    for ex in data.stage_examples(stage, 300, seed=4, world=world):
        text = ex.completion.split("\n<information>")[0]
        turn = parse_turn(text)
        assert turn.problems == (), (text, turn.problems)
        plan = plan_of(turn)
        assert plan == (ex.plan.query, ex.plan.answer)
        assert turn.confidence == pytest.approx(round(world.plan_success(ex.state, *plan), 2))
        scores = score_turn(world, ex.state, turn)  # the evaluation scores a training turn as right
        assert scores["valid"] == scores["chain"] == 1.0 and scores.get("results", 1.0) == 1.0
        truth = [(f.subject, f.relation, f.value) for f in world.chain(ex.state.question)]
        assert imagined_chain(turn.imaginary) == truth


def test_every_planned_search_is_a_query_of_the_grammar(world: World) -> None:
    for ex in data.stage_examples(2, 3000, seed=12, world=world):
        if ex.plan.query is not None:
            assert env.parse_query(ex.plan.query) is not None, ex.plan


def test_prompts_round_trip(world: World) -> None:
    for ex in data.stage_examples(2, 200, seed=6, world=world):
        assert data.parse_prompt(ex.prompt) == ex.state


def test_stage_one_is_the_world_model_only(world: World) -> None:
    for ex in data.stage_examples(1, 100, seed=1, world=world):
        assert ex.completion.startswith("<imaginary>") and ex.completion.endswith("</imaginary>")


def test_observation_examples_imagine_what_the_search_returns(world: World) -> None:
    with_obs = [e for e in data.stage_examples(2, 300, seed=3, world=world) if "\n<information>" in e.completion]
    assert with_obs
    for e in with_obs:
        assert e.plan.query is not None
        seen = world.retriever.candidates(e.plan.query)
        obs = e.completion.split("\n<information>")[1]
        assert obs == f"{seen[0] if seen else 'nothing found'} steps={e.state.steps - 1}</information>"
        results = imagined_results(parse_turn(e.completion).imaginary)
        assert results is not None and results[0] == e.plan.query


def test_training_data_excludes_heldout_questions(world: World) -> None:
    held = env.heldout_questions(world)
    for stage in (1, 2):
        assert not any(e.state.question in held for e in data.stage_examples(stage, 400, seed=5, world=world))
    assert all(e.state.question in held for e in data.stage_examples(2, 100, seed=5, heldout=True, world=world))


def test_only_optimal_plans_teach_the_query(world: World) -> None:
    examples = data.stage_examples(2, 400, seed=8, world=world)
    tok = build_tokenizer((e.prompt + e.completion for e in examples), 384, WHOLE_TOKENS)
    spec = world_spec("search")
    other = next(e for e in examples if not e.optimal and e.plan.query is not None)
    ids, plain = _encode(tok, other, 4.0, spec=spec)
    _, masked = _encode(tok, other, 4.0, policy_mask=True, spec=spec)
    zeroed = tok.decode([i for i, a, b in zip(ids, plain, masked, strict=True) if a != b])
    assert zeroed.split() == ["search", *other.plan.query.split()]
    assert any(e.optimal for e in examples) and any(not e.optimal for e in examples)
    for e in examples:  # optimal: as good as the oracle's action (ties teach too)
        action = env.Action("answer", e.plan.answer) if e.plan.query is None else env.Action("search", e.plan.query)
        assert e.optimal == (abs(world.q_value(e.state, action) - world.value(e.state)) < 1e-12), e.plan


def test_chat_template_renders_the_training_prompt(world: World) -> None:
    ex = next(e for e in data.stage_examples(2, 200, seed=7, world=world) if len(e.state.observed) == 2)
    messages = [{"role": "user", "content": f"question: {ex.state.question.text} steps={env.STEPS}"}]
    for i, found in enumerate(ex.state.observed):
        messages += [{"role": "assistant", "content": "", "tool_calls": [{"id": f"c{i}", "type": "function",
                      "function": {"name": "search", "arguments": "{}"}}]},
                     {"role": "tool", "tool_call_id": f"c{i}", "content": data.observation(found, env.STEPS - i - 1)}]
    rendered = jinja2.Environment().from_string(CHAT_TEMPLATE).render(messages=messages, bos_token="<s>",
                                                                      tools=[{"type": "function"}])
    assert rendered == "<s>" + ex.prompt


def test_near_miss_histories_are_reachable_and_often_hold_the_passage(world: World) -> None:
    import random

    rng = random.Random(2)
    states = [data.near_miss_state(world, s, rng) for s in env.start_states(world, False)[:400]]
    assert all(len(s.observed) == env.STEPS - s.steps and 1 <= len(s.observed) <= 2 for s in states)
    for s in states:  # every passage is a candidate of some query of the grammar: a search can return it
        for p in s.observed:
            assert p is None or p in world.kb.passages
    share = sum(world.supported(s) for s in states) / len(states)
    assert 0.3 < share < 0.7


def test_the_plans_choice_weighs_more_where_it_teaches(world: World) -> None:
    examples = data.stage_examples(2, 200, seed=9, world=world)
    tok = build_tokenizer((e.prompt + e.completion for e in examples), 384, WHOLE_TOKENS)
    spec = world_spec("search")
    assert spec.policy_weight > 1 and world_spec("numberreach").policy_weight == 1
    ex = next(e for e in examples if e.optimal and e.plan.query is not None)
    ids, plain = _encode(tok, ex, 1.0, spec=spec)
    _, heavy = _encode(tok, ex, 1.0, spec=spec, policy_weight=spec.policy_weight)
    raised = tok.decode([i for i, a, b in zip(ids, plain, heavy, strict=True) if b == spec.policy_weight and a == 1])
    assert raised.split() == ["search", *ex.plan.query.split()]


def test_the_analysis_restates_the_last_document_and_checks_it_there(world: World) -> None:
    seen = {"found": 0, "not found": 0, "rank": 0, "rank none": 0}
    for ex in data.stage_examples(2, 600, seed=10, world=world):
        turn = parse_turn(ex.completion.split("\n<information>")[0])
        last = world.last_fact(ex.state.question)
        assert last is not None and turn.analysis is not None and turn.imaginary is not None
        doc = world.kb.doc(last)
        assert doc is not None
        doc_id, _, check = turn.analysis.partition(" ")
        assert doc_id == f"#{kb.split_document(doc)[1]}"
        if ex.plan.query is None:
            assert check == ("found" if world.supported(ex.state) else "not found")
            seen[check] += 1
            continue
        listed = [p.strip() for p in turn.imaginary.split(": ", 1)[1].split(";") if p.strip() != "nothing"]
        numbered = {doc: n for n, doc in (p.split(" ", 1) for p in listed)}
        rank = check.split(",")[0].removeprefix("rank ")
        assert rank == numbered.get(doc, "none")  # the number written before the candidate with that id
        assert rank == str(world.retriever.rank(ex.plan.query, doc) or "none")
        seen["rank none" if rank == "none" else "rank"] += 1
    assert all(seen.values()), seen


def test_the_search_models_analysis_weighs_as_its_confidence(world: World) -> None:
    examples = data.stage_examples(2, 100, seed=11, world=world)
    tok = build_tokenizer((e.prompt + e.completion for e in examples), 384, WHOLE_TOKENS)
    ex = examples[0]
    ids, weights = _encode(tok, ex, 4.0, spec=world_spec("search"))
    heavy = tok.decode([i for i, w in zip(ids, weights, strict=True) if w == 4.0])
    judgement = ex.completion[ex.completion.index("<analysis>"):ex.completion.index("</confidence>") + 13]
    assert heavy.replace(" ", "").replace("\n", "") == judgement.replace(" ", "").replace("\n", "")
    _, plain = _encode(tok, ex, 4.0, spec=world_spec("numberreach"))  # NumberReach's recipe: the confidence only
    assert "analysis" not in tok.decode([i for i, w in zip(ids, plain, strict=True) if w == 4.0])


def test_an_answer_that_claims_found_wrongly_is_caught_at_the_restated_id(world: World) -> None:
    import random

    rng = random.Random(3)
    pool = env.start_states(world, False)
    state = next(s for s in (data.near_miss_state(world, rng.choice(pool), rng) for _ in range(200))
                 if not world.supported(s))
    answer = world.answer(state.question) or ""
    turn = parse_turn(data.make_turn(world, state, data.Plan(None, answer, claims_found=True)).completion)
    last = world.last_fact(state.question)
    assert last is not None and turn.imaginary is not None and turn.imaginary.endswith(" found")
    assert turn.analysis == f"#{kb.split_document(world.kb.doc(last) or '')[1]} not found"
    assert turn.confidence == 0.0


def test_imagined_results_drop_only_the_right_rank_numbers() -> None:
    assert imagined_results("A b C #1 search C b: 1 C b D #2; 2 E b C #3") == ("C b", ["C b D #2", "E b C #3"])
    assert imagined_results("A b C #1 search C b: 2 C b D #2; 1 E b C #3") == ("C b", ["2 C b D #2", "1 E b C #3"])
    assert imagined_results("A b C #1 search C b: nothing") == ("C b", [])
    assert imagined_results("A b C #1 found") is None
