"""self_consistency with a scripted sampler: votes by action, weighted by calibrated confidence; stops as soon
as one action leads; widens like branch_commit; the same action in other spellings is one vote."""

from __future__ import annotations

import json

import pytest

from planner.format import Action
from planner.search import Algorithm, Budget, Decision, PlanConfig, plan
from planner.search.base import Candidate
from planner.search.self_consistency import agreed
from planner.votes import Vote, tally, vote_key
from reference.search.retrieval import _words as search_world_words
from tests.unit.planner.scripted_sampler import ScriptedSampler


def turn(conf: int | None, action: str) -> str:
    claim = "" if conf is None else f"<confidence>{conf}%</confidence>\n"
    return f"<imaginary>plan</imaginary>\n{claim}<think>t</think>\n{action}"


def scripted(turns: list[str]) -> ScriptedSampler:
    """The k-th turn drawn by the plan (over all calls) is turns[k]."""
    drawn: list[int] = [0]

    def script(prompt: str, call: int, i: int) -> str:
        k = drawn[0]
        drawn[0] += 1
        return turns[k % len(turns)]

    return ScriptedSampler(script)


def sc(**kw: object) -> PlanConfig:
    return PlanConfig(algorithm=Algorithm.SELF_CONSISTENCY, **kw)  # type: ignore[arg-type]


async def test_two_agreeing_turns_in_the_first_round_commit_at_once() -> None:
    s = scripted([turn(60, "<answer>7</answer>"), turn(40, "<answer> 7. </answer>")])
    r = await plan(s, "P", sc(width=2, width_growth=2, commit_threshold=0.6, budget=Budget(max_candidates=14)))
    assert r.decision is Decision.COMMIT
    assert [c[1] for c in s.calls] == [2]  # one engine call of two whole turns
    assert s.calls[0][3] == ("</search>", "</answer>", "</tool_call>")
    assert r.chosen is not None and r.chosen.raw_confidence == 0.6  # the leading action's most confident turn
    assert [(v.key, v.turns, v.share) for v in r.votes] == [("answer:7", [0, 1], 1.0)]
    assert [c.vote for c in r.candidates] == ["answer:7", "answer:7"]


async def test_disagreement_widens_by_width_growth_until_one_action_leads() -> None:
    a, b = "<answer>left</answer>", "<answer>right</answer>"
    s = scripted([turn(50, a), turn(50, b), turn(50, a), turn(50, a), turn(10, b), turn(50, a)])
    r = await plan(s, "P", sc(width=2, width_growth=2, commit_threshold=0.7, budget=Budget(max_candidates=14)))
    assert [c[1] for c in s.calls] == [2, 4]
    # left: 4 turns × 0.5 = 2.0 (0.5 + 0.5 + 0.5 + 0.5); right: 0.5 + 0.1 = 0.6 → share 2.0 / 2.6 ≈ 0.77
    assert r.decision is Decision.COMMIT and r.votes[0].key == "answer:left"
    assert r.votes[0].share == pytest.approx(2.0 / 2.6)
    assert r.usage.candidates == 6


async def test_confidence_outweighs_a_count() -> None:
    """Three turns that claim little lose to two that claim much: the vote is weighted, not counted."""
    a, b = "<answer>a</answer>", "<answer>b</answer>"
    s = scripted([turn(5, a), turn(5, a), turn(5, a), turn(90, b), turn(80, b)])
    r = await plan(s, "P", sc(width=5, commit_threshold=0.5, budget=Budget(max_candidates=5)))
    assert r.votes[0].key == "answer:b" and len(r.votes[0].turns) == 2
    assert r.chosen is not None and r.chosen.turn.action is not None and r.chosen.turn.action.content == "b"
    assert r.chosen.raw_confidence == 0.9


async def test_no_agreement_within_the_budget_returns_the_leader_and_says_so() -> None:
    s = scripted([turn(50, f"<answer>{k}</answer>") for k in "abcdefgh"])
    r = await plan(s, "P", sc(width=2, width_growth=2, commit_threshold=0.6, budget=Budget(max_candidates=6)))
    assert r.decision is Decision.BUDGET_EXHAUSTED
    assert [c[1] for c in s.calls] == [2, 4] and r.usage.candidates == 6
    assert r.chosen is not None and r.chosen.turn.action is not None and r.chosen.turn.action.content == "a"


async def test_a_model_that_claims_nothing_votes_by_counts_and_says_no_confidence() -> None:
    plain = ["<answer>yes</answer>", "<answer>no</answer>", "<answer>yes</answer>"]
    s = scripted(plain)
    r = await plan(s, "P", sc(width=3, commit_threshold=0.6, budget=Budget(max_candidates=3)))
    assert r.decision is Decision.NO_CONFIDENCE
    assert [(v.key, v.weight) for v in r.votes] == [("answer:yes", 2.0), ("answer:no", 1.0)]
    assert r.chosen is not None and r.chosen.turn.action is not None and r.chosen.turn.action.content == "yes"


async def test_margin_keeps_widening_while_the_lead_is_narrow() -> None:
    a, b = "<answer>a</answer>", "<answer>b</answer>"
    s = scripted([turn(50, a), turn(50, a), turn(50, b), turn(50, b), turn(50, a), turn(50, a)])
    r = await plan(s, "P", sc(width=4, width_growth=1, commit_threshold=0.5, margin=0.2,
                              budget=Budget(max_candidates=8)))
    assert [c[1] for c in s.calls] == [4, 4] and r.decision is Decision.COMMIT and r.votes[0].key == "answer:a"


async def test_turns_without_an_action_do_not_vote_and_the_token_budget_holds() -> None:
    s = scripted([turn(90, "no action here"), turn(40, "<answer>x</answer>"), turn(30, "<answer>x</answer>")])
    r = await plan(s, "P", sc(width=3, commit_threshold=0.5, budget=Budget(max_candidates=3, max_tokens=400)))
    assert r.votes[0].turns == [1, 2] and r.candidates[0].vote is None
    assert r.usage.completion_tokens <= 400


def test_the_same_tool_call_in_other_spellings_is_one_vote() -> None:
    one = Action("tool_call", "", name="op", arguments={"b": 1, "a": [2, 3]})
    two = Action("tool_call", "", name="op", arguments=json.loads('{ "a": [2,3], "b": 1 }'))
    other = Action("tool_call", "", name="op", arguments={"a": [2, 3], "b": 2})
    assert vote_key(one) == vote_key(two) != vote_key(other)
    assert vote_key(Action("tool_call", "", name="other", arguments={"a": [2, 3], "b": 1})) != vote_key(one)


@pytest.mark.parametrize(("a", "b"), [("Paris born", "paris  born."), ("ada.lovelace wrote", "ada lovelace wrote")])
def test_searches_are_one_vote_where_the_search_world_reads_them_alike(a: str, b: str) -> None:
    assert search_world_words(a) == search_world_words(b)
    assert vote_key(Action("search", a)) == vote_key(Action("search", b))
    assert vote_key(Action("search", a)) != vote_key(Action("search", "born paris"))  # order is the grammar's


def test_answers_compare_by_normalised_text_and_kinds_never_mix() -> None:
    assert vote_key(Action("answer", "“Paris.”")) == vote_key(Action("answer", " paris")) == "answer:paris"
    assert vote_key(Action("answer", "ｐａｒｉｓ")) == "answer:paris"  # NFKC
    assert vote_key(Action("search", "paris")) != vote_key(Action("answer", "paris"))
    assert vote_key(None) is None


def _cand(i: int, conf: float | None) -> Candidate:
    from planner.format import Turn

    return Candidate(id=i, text="", turn=Turn(), raw_confidence=conf, calibrated_confidence=conf, tokens=1)


def test_tally_and_the_stop_rule() -> None:
    votes = tally([(_cand(0, 0.2), "x"), (_cand(1, 0.6), "y"), (_cand(2, 0.2), "x"), (_cand(3, None), "z")])
    assert [(v.key, v.turns) for v in votes] == [("y", [1]), ("x", [0, 2]), ("z", [3])]
    assert sum(v.share for v in votes) == pytest.approx(1.0)
    assert not agreed(votes, 0.5, 0.0)  # the leader is one turn: no agreement yet
    assert agreed([Vote("x", [0, 2], 1.0, 0.8), Vote("y", [1], 0.25, 0.2)], 0.8, 0.6)
    assert not agreed([Vote("x", [0, 2], 1.0, 0.8), Vote("y", [1], 0.25, 0.2)], 0.8, 0.61)
