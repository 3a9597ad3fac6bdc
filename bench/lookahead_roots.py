"""Does lookahead choose better where no first-level plan claims any chance if it draws more of them?

``bench/planners.py`` plays whole episodes: a change that touches one decision in ten drowns in the
noise of 150 episodes. This benchmark looks at those decisions alone.

1. Visit held-out states (a mix of policies, ``reference.data.visited_states``) and draw, through
   the real engine (vLLM on CPU), the 16 first-level turns lookahead would draw there (the same
   seed, so the same turns). Keep the decisions where none claims ``--threshold`` or more (0.35:
   below any plan that hits in this world, ≥ 0.85^6).
2. On those decisions, plan with the bench's lookahead configuration twice — one round of roots, and
   ``--rounds`` rounds while none reaches the threshold — with the same seed, and score each chosen
   action by the exact one-step planner's advantage ``one_step_q(s, a) − one_step_value(s)``.
3. Print the mean difference with one standard error, by steps left, and the tokens spent.

    .venv/bin/python bench/lookahead_roots.py [--states 300] [--repeats 2] [--rounds 4] [--threshold 0.35]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

from planner.params import positive, unit
from planner.search import Algorithm, PlanConfig, PlanResult, Sampler, plan
from reference import data
from reference import numberreach as env
from reference.planning import PLANNERS, chosen_op, mean_se, one_step_advantage

REPO = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Pair:
    state: env.State
    one_round: float  # one-step advantage of the action chosen with one round of roots
    widened: float  # … with up to ``rounds`` rounds
    tokens: tuple[int, int]


def configs(rounds: int, threshold: float) -> tuple[PlanConfig, PlanConfig]:
    base = PLANNERS["lookahead"]
    per_round = base.width
    extra = per_round * (base.root_rounds - 1)  # the bench's own widening, taken out of its budget
    budget = dataclasses.replace(base.budget, max_candidates=base.budget.max_candidates - extra)
    one = dataclasses.replace(base, root_rounds=1, budget=budget)
    wide = dataclasses.replace(base, root_rounds=rounds, commit_threshold=threshold, budget=dataclasses.replace(
        budget, max_candidates=budget.max_candidates + per_round * (rounds - 1)))
    return one, wide


async def measure(sampler: Sampler, args: argparse.Namespace) -> list[Pair]:
    seen: set[env.State] = set()
    states: list[env.State] = []
    for s in data.visited_states(random.Random(args.seed), heldout=True):
        if s not in seen:
            seen.add(s)
            states.append(s)
        if len(states) == args.states:
            break
    one, wide = configs(args.rounds, args.threshold)
    screen = PlanConfig(algorithm=Algorithm.BEST_OF_N, width=one.width, max_tokens_per_turn=one.max_tokens_per_turn)
    sem = asyncio.Semaphore(16)

    async def run(state: env.State, cfg: PlanConfig, seed: int) -> PlanResult:
        async with sem:
            return await plan(sampler, sampler.start(data.prompt_for(state)), dataclasses.replace(cfg, seed=seed))

    jobs = [(s, args.seed * 1_000_003 + 17 * i + k) for i, s in enumerate(states) for k in range(args.repeats)]
    t0 = time.monotonic()
    screened = await asyncio.gather(*(run(s, screen, seed) for s, seed in jobs))
    hopeless = [(s, seed) for (s, seed), r in zip(jobs, screened, strict=True)
                if max((c.calibrated_confidence or 0.0) for c in r.candidates) < args.threshold]
    print(f"screened {len(jobs)} decisions ({time.monotonic() - t0:.0f}s): {len(hopeless)} with no root "
          f"claiming {args.threshold} or more", file=sys.stderr)
    a = await asyncio.gather(*(run(s, one, seed) for s, seed in hopeless))
    b = await asyncio.gather(*(run(s, wide, seed) for s, seed in hopeless))
    return [Pair(s, one_step_advantage(s, chosen_op(ra.chosen)), one_step_advantage(s, chosen_op(rb.chosen)),
                 (ra.usage.completion_tokens, rb.usage.completion_tokens))
            for (s, _), ra, rb in zip(hopeless, a, b, strict=True)]


def report(pairs: list[Pair], rounds: int) -> None:
    if not pairs:
        print("no decision without a root claiming any chance: nothing to compare")
        return
    diff, se = mean_se([p.widened - p.one_round for p in pairs])
    print(f"{len(pairs)} decisions where no root claims any chance; one-step advantage of lookahead's choice:")
    print(f"  one round of roots   {mean_se([p.one_round for p in pairs])[0]:+.4f}"
          f"   ({sum(p.tokens[0] for p in pairs) / len(pairs):.0f} tokens/decision)")
    print(f"  up to {rounds} rounds      {mean_se([p.widened for p in pairs])[0]:+.4f}"
          f"   ({sum(p.tokens[1] for p in pairs) / len(pairs):.0f} tokens/decision)")
    print(f"  difference           {diff:+.4f} ± {se:.4f} (1 SE)")
    by: dict[int, list[float]] = defaultdict(list)
    for p in pairs:
        by[p.state.n].append(p.widened - p.one_round)
    for n in sorted(by):
        print(f"    {n} steps left: {len(by[n]):4d} decisions, difference {sum(by[n]) / len(by[n]):+.4f}")


async def main_async(args: argparse.Namespace) -> list[Pair]:
    from engine.sampler import local_sampler

    async with local_sampler(args.model) as sampler:
        return await measure(sampler, args)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(REPO / "models" / "foresight-numberreach"))
    ap.add_argument("--states", type=positive, default=300, help="distinct held-out states visited")
    ap.add_argument("--repeats", type=positive, default=2, help="decisions (seeds) per state")
    ap.add_argument("--rounds", type=positive, default=4, help="rounds of roots at most, widened")
    ap.add_argument("--threshold", type=unit, default=0.35, help="widen while no root claims this")
    ap.add_argument("--seed", type=int, default=123)
    args = ap.parse_args()
    report(asyncio.run(main_async(args)), args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
