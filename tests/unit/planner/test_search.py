"""Search algorithms with a scripted sampler: known confidences → known decisions, exact budgets."""

from __future__ import annotations

import asyncio

import pytest

from planner import InvalidPlanRequest
from planner.search import Algorithm, Budget, Decision, LookaheadContext, PlanConfig, plan
from tests.unit.planner.scripted_sampler import ScriptedSampler, by_index, turn


def cfg(algorithm: str, **kw: object) -> PlanConfig:
    return PlanConfig(algorithm=Algorithm(algorithm), **kw)  # type: ignore[arg-type]


async def test_greedy_is_one_sample_at_temperature_zero() -> None:
    s = ScriptedSampler(by_index([30, 90]))
    r = await plan(s, "P", cfg("greedy"))
    assert r.decision is Decision.COMMIT
    assert r.chosen is not None and r.chosen.raw_confidence == 0.3
    assert len(s.calls) == 1 and s.calls[0][1] == 1


async def test_best_of_n_picks_the_most_confident_in_one_call() -> None:
    s = ScriptedSampler(by_index([30, 90, 60, 10]))
    r = await plan(s, "P", cfg("best_of_n", width=4))
    assert r.chosen is not None and r.chosen.turn.action is not None
    assert r.chosen.turn.action.content == "op1"
    assert len(s.calls) == 1 and s.calls[0][1] == 4
    assert r.usage.candidates == 4
    assert r.usage.completion_tokens == sum(len(turn(c, f"op{i}")) for i, c in enumerate([30, 90, 60, 10]))


class FlatCalibrator:
    """A monotone map that pools every confidence into one value (as isotonic regression may)."""

    def calibrate(self, raw: float | None, domain: str) -> float | None:
        return None if raw is None else 0.4


async def test_raw_confidence_breaks_ties_of_a_flat_calibration_map() -> None:
    s = ScriptedSampler(by_index([60, 90, 70]))
    r = await plan(s, "P", cfg("best_of_n", width=3), FlatCalibrator())
    assert r.chosen is not None and r.chosen.calibrated_confidence == 0.4
    assert r.chosen.turn.action is not None and r.chosen.turn.action.content == "op1"


async def test_branch_commit_commits_above_threshold_and_completes_only_the_winner() -> None:
    s = ScriptedSampler(by_index([30, 90, 60, 10]))
    r = await plan(s, "P", cfg("branch_commit", width=4, commit_threshold=0.8))
    assert r.decision is Decision.COMMIT
    assert r.chosen is not None and r.chosen.raw_confidence == 0.9
    assert r.chosen.turn.action is not None and r.chosen.turn.action.content == "op1"
    # one proposal call (spans stop at </confidence>) + one continuation of the winner only
    assert [c[1] for c in s.calls] == [4, 1]
    assert s.calls[0][3] == ("</confidence>",)
    assert s.calls[1][0].startswith("P<imaginary>plan op1</imaginary>")


async def test_branch_commit_widens_then_exhausts_budget() -> None:
    s = ScriptedSampler(by_index([30, 50]))
    budget = Budget(max_candidates=6, max_tokens=10_000)
    r = await plan(s, "P", cfg("branch_commit", width=2, commit_threshold=0.8, budget=budget))
    assert r.decision is Decision.BUDGET_EXHAUSTED
    assert r.usage.candidates == 6  # three rounds of 2
    assert r.chosen is not None and r.chosen.raw_confidence == 0.5
    assert r.chosen.turn.action is not None  # the best span was still continued to an action


async def test_every_engine_call_gets_seeds_no_earlier_call_used() -> None:
    # the engine seeds sample i of a call with seed + i: consecutive calls must not overlap, or a
    # widening round redraws the very samples it was meant to add to
    s = ScriptedSampler(by_index([30, 50]))
    budget = Budget(max_candidates=6, max_tokens=10_000)
    await plan(s, "P", cfg("branch_commit", width=2, commit_threshold=0.8, budget=budget, seed=100))
    blocks = [set(range(seed, seed + n)) for seed, (_, n, _, _) in zip(s.seeds, s.calls, strict=True)
              if seed is not None]
    assert len(blocks) == len(s.calls) == 4  # three proposal rounds and the continuation
    assert all(a.isdisjoint(b) for i, a in enumerate(blocks) for b in blocks[i + 1:])
    assert min(min(b) for b in blocks) == 100


async def test_branch_commit_margin_forces_widening() -> None:
    s = ScriptedSampler(lambda p, call, i: turn([85, 84][i] if call == 0 else [99, 50][i], f"c{call}i{i}"))
    r = await plan(s, "P", cfg("branch_commit", width=2, commit_threshold=0.8, margin=0.05))
    assert r.decision is Decision.COMMIT
    assert r.chosen is not None and r.chosen.raw_confidence == 0.99
    assert len(s.calls) == 3  # propose, widen, complete


async def test_token_budget_is_respected_exactly() -> None:
    s = ScriptedSampler(by_index([10]))
    budget = Budget(max_tokens=300, max_candidates=100)
    r = await plan(s, "P", cfg("branch_commit", width=4, budget=budget, max_tokens_per_turn=64))
    assert r.usage.completion_tokens <= 300
    assert r.usage.completion_tokens == sum(len(c.text) for c in r.candidates)
    assert r.decision is Decision.BUDGET_EXHAUSTED


async def test_unparsable_output_is_a_candidate_with_problems() -> None:
    s = ScriptedSampler(lambda p, call, i: "garbage")
    r = await plan(s, "P", cfg("best_of_n", width=3))
    assert r.chosen is not None and "missing_confidence" in r.chosen.turn.problem_kinds
    assert all(c.raw_confidence is None for c in r.candidates)


def two_futures(roots: list[tuple[int, str]], future_op0: int, future_op1: int) -> ScriptedSampler:
    """Root turns (confidence, action); the model imagines "after opK" and then one future per action."""

    def script(prompt: str, call: int, i: int) -> str:
        if prompt.endswith("<information>"):
            return ("after op0" if "answer>op0" in prompt else "after op1") + "</information>"
        if "after op0" in prompt:
            return turn(future_op0, "x")
        if "after op1" in prompt:
            return turn(future_op1, "y")
        return turn(*roots[i])

    return ScriptedSampler(script)


async def test_lookahead_backs_up_imagined_futures() -> None:
    # root op0 looks better (70 vs 60) but its imagined future is bad (20); op1's future is 95
    s = two_futures([(70, "op0"), (60, "op1")], 20, 95)
    r = await plan(s, "P", cfg("lookahead", width=2, branch=2, budget=Budget(max_depth=2)))
    assert r.chosen is not None and r.chosen.turn.action is not None
    assert r.chosen.turn.action.content == "op1"
    assert r.chosen.value == pytest.approx(0.95)
    assert r.usage.depth == 2
    children = [c for c in r.candidates if c.depth == 2]
    assert {c.parent for c in children} == {0, 1}


async def test_lookahead_expands_distinct_actions_and_keeps_a_plan_that_already_hits() -> None:
    # roots: op0 twice (95, 90) and op1 (40); with branch 2 the second op0 is skipped for op1.
    # op0's imagined futures are poor (20) but its own plan already hits: it keeps 0.95.
    s = two_futures([(95, "op0"), (90, "op0"), (40, "op1")], 20, 60)
    r = await plan(s, "P", cfg("lookahead", width=3, branch=2, budget=Budget(max_depth=2)))
    assert {c.parent for c in r.candidates if c.depth == 2} == {0, 2}
    assert r.chosen is not None and r.chosen.id == 0 and r.chosen.value == pytest.approx(0.95)
    assert r.candidates[2].value == pytest.approx(0.6)  # op1: its future beats its own 0.40


async def test_lookahead_discount_weighs_an_imagined_future_below_a_plan_written_out() -> None:
    # op0's own plan claims 85%; op1's own plan 0%, but the future imagined after it claims 100%
    # (a model asked about a state it never met). Undiscounted, the imagined 100% wins; at 0.85
    # it ties op0's 85% and the plan written out (higher own confidence) wins; at 0.5 op1 is 0.5.
    async def run(discount: float) -> tuple[str, float, float]:
        s = two_futures([(85, "op0"), (0, "op1")], 0, 100)
        r = await plan(s, "P", cfg("lookahead", width=2, branch=2, budget=Budget(max_depth=2), discount=discount))
        assert r.chosen is not None and r.chosen.turn.action is not None
        op0, op1 = r.candidates[0].value, r.candidates[1].value
        assert op0 is not None and op1 is not None
        return r.chosen.turn.action.content, op0, op1

    assert await run(1.0) == ("op1", pytest.approx(0.85), pytest.approx(1.0))
    assert await run(0.85) == ("op0", pytest.approx(0.85), pytest.approx(0.85))
    assert await run(0.5) == ("op0", pytest.approx(0.85), pytest.approx(0.5))  # its own plan is not discounted


async def test_lookahead_widens_the_root_while_no_plan_reaches_the_threshold() -> None:
    # first round: two plans claiming nothing; second round: op1 claims 60%; a third round is never
    # drawn (60% reaches the threshold), and with root_rounds 1 the second is not drawn either
    def script(prompt: str, call: int, i: int) -> str:
        if prompt.endswith("<information>"):
            return "after</information>"
        if "after" in prompt:
            return turn(0, "z")
        return turn(0, "op0") if call == 0 else turn(60, f"op{i + 1}")

    async def run(rounds: int) -> tuple[list[int], str]:
        s = ScriptedSampler(script)
        r = await plan(s, "P", cfg("lookahead", width=2, branch=1, root_rounds=rounds, commit_threshold=0.5,
                                   budget=Budget(max_depth=2)))
        roots = [c.id for c in r.candidates if c.depth == 1]
        assert r.chosen is not None and r.chosen.turn.action is not None
        return roots, r.chosen.turn.action.content

    assert await run(1) == ([0, 1], "op0")
    assert await run(3) == ([0, 1, 2, 3], "op1")
    with pytest.raises(InvalidPlanRequest, match="root_rounds"):
        cfg("lookahead", root_rounds=0)


async def test_lookahead_observation_context_prompts_with_observation_only() -> None:
    def script(prompt: str, call: int, i: int) -> str:
        if prompt.endswith("<information>"):
            return "x=3</information>"
        return turn(50, "a")

    s = ScriptedSampler(script)
    await plan(s, "P", cfg("lookahead", width=1, branch=1, lookahead_context=LookaheadContext.OBSERVATION))
    assert any(c[0] == "<information>x=3</information>\n" for c in s.calls)


@pytest.mark.parametrize("max_tokens", [4096, 1400])
async def test_lookahead_branches_side_by_side_share_the_budget_and_never_overrun_it(max_tokens: int) -> None:
    # five distinct actions expanded at once by an engine that takes time: each branch must see its
    # share of what is left, not the whole of it (before, all five took 8 candidates: 48 of 16)
    s = ScriptedSampler(by_index([10, 20, 30, 40, 50, 60, 70, 80]), delay_s=0.01)
    budget = Budget(max_depth=2, max_candidates=16, max_tokens=max_tokens)
    r = await plan(s, "P", cfg("lookahead", width=8, branch=5, budget=budget))
    assert r.usage.candidates == len(r.candidates) <= 16
    assert r.usage.completion_tokens <= max_tokens
    kids = [c.parent for c in r.candidates if c.depth == 2]
    assert len(set(kids)) == 5  # every expanded branch got children
    assert max(kids.count(p) for p in set(kids)) - min(kids.count(p) for p in set(kids)) <= 1


async def test_twenty_concurrent_plans_do_not_interfere() -> None:
    samplers = [ScriptedSampler(by_index([10 + k, 5]), delay_s=0.001 * (k % 3)) for k in range(20)]
    results = await asyncio.gather(*(plan(s, f"P{k}", cfg("branch_commit", width=2, commit_threshold=0.05))
                                     for k, s in enumerate(samplers)))
    for k, r in enumerate(results):
        assert r.chosen is not None and r.chosen.raw_confidence == pytest.approx((10 + k) / 100)
        assert all(c[0].startswith(f"P{k}") for c in samplers[k].calls)
        assert r.usage.candidates == 2


@pytest.mark.parametrize(
    ("kw", "field"),
    [({"commit_threshold": 1.5}, "commit_threshold"), ({"margin": -0.1}, "margin"), ({"width": 0}, "width"),
     ({"temperature": 3.0}, "temperature"), ({"discount": 1.5}, "discount"), ({"discount": -0.1}, "discount")],
)
def test_bad_parameters_name_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidPlanRequest) as err:
        PlanConfig(**kw)  # type: ignore[arg-type]
    assert err.value.field == field


@pytest.mark.parametrize("kw", [{"max_tokens": -1}, {"max_candidates": 0}, {"max_depth": 0}, {"deadline_s": 0}])
def test_bad_budgets_name_the_field(kw: dict[str, object]) -> None:
    with pytest.raises(InvalidPlanRequest) as err:
        Budget(**kw)  # type: ignore[arg-type]
    assert err.value.field.startswith("budget.")
