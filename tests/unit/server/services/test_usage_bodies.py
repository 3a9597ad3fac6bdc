"""What a response says it cost: cached prompt tokens as OpenAI's usage objects carry them, and a plan's
problems summed up per kind."""

from __future__ import annotations

from planner.format import parse_turn
from planner.search import Algorithm, Candidate, Decision, PlanResult, Usage
from server.services.plan_response import problem_summary
from server.services.usage import TokenUsage


def test_cached_prompt_tokens_are_in_the_openai_and_responses_usage() -> None:
    u = TokenUsage(prompt_tokens=100, completion_tokens=7, cached_tokens=64)
    chat = u.openai().model_dump()
    assert chat["prompt_tokens_details"] == {"cached_tokens": 64} and chat["total_tokens"] == 107
    assert u.responses().model_dump()["input_tokens_details"]["cached_tokens"] == 64


def test_problems_are_summed_per_kind_with_the_first_detail_and_a_candidate_counted_once() -> None:
    def cand(i: int, text: str) -> Candidate:
        turn = parse_turn(text)
        return Candidate(id=i, text=text, turn=turn, raw_confidence=turn.confidence, calibrated_confidence=None,
                         tokens=1)

    cands = [cand(0, "no format at all"), cand(1, "<answer>x</answer> more words <answer>y</answer>"),
             cand(2, "<imaginary>a</imaginary><confidence>90%</confidence><answer>z</answer>")]
    summary = {p.kind: p for p in problem_summary(PlanResult(Decision.NO_CONFIDENCE, None, cands, Usage(),
                                                             Algorithm.BEST_OF_N))}
    assert summary["missing_confidence"].candidates == 2 and summary["missing_action"].candidates == 1
    assert summary["missing_action"].detail == "no <search>, <answer> or <tool_call>"
    assert all(p.candidates <= 3 for p in summary.values())
