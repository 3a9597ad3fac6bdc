"""Calibration benchmark on the reference environment (held-out states and episodes).

The deployed world may differ from the one the model learnt: ``--stall`` sets how often an action
stalls there (the model learnt 0.15; default 0.45, where its confidence is too high — in its own
world the shipped model is already calibrated and a map has little to fix).

1. Fit: the model plans (greedy, T=1) on held-out states; each committed plan is executed in
   the simulator of the deployed world and its outcome reported — the (raw confidence, outcome)
   pairs an app would send to ``/v1/outcomes``. The server's policy fits the map (Platt from 30
   outcomes, isotonic from 300).
2. Evaluate on other held-out states: ECE (15 bins) and Brier of raw vs calibrated confidence.
3. Episodes: branch_commit deciding with raw vs calibrated confidence, side by side on the
   same held-out starts.

    .venv/bin/python bench/calibration.py [--fit 400] [--eval 400] [--episodes 100] [--stall 0.45]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from pathlib import Path

from planner.calibrate import CalibrationPolicy, DomainCalibrator, fit_map
from planner.calibration_math import brier_score, expected_calibration_error
from planner.search import Algorithm, PlanConfig, plan
from reference import data
from reference import numberreach as env
from reference.planning import run_planner

REPO = Path(__file__).resolve().parents[1]

DOMAIN = "numberreach"


async def turn_outcomes(sampler: object, states: list[env.State], seed: int,
                        stall_prob: float) -> list[tuple[float, bool]]:
    """(raw confidence, outcome) of the model's greedy plan in each state; unparsable turns are failures at 0."""
    sem = asyncio.Semaphore(16)

    async def one(i: int, state: env.State) -> tuple[float, bool]:
        async with sem:
            result = await plan(sampler, sampler.start(data.prompt_for(state)),  # type: ignore[attr-defined]
                                PlanConfig(algorithm=Algorithm.GREEDY, max_tokens_per_turn=128, seed=seed + i))
        c = result.chosen
        ops = [op for op, _ in data.parse_rollout(c.turn.imaginary or "")] if c else []
        success = bool(ops) and env.simulate_plan(state, ops, random.Random(seed * 31 + i), stall_prob)
        return (c.raw_confidence if c and c.raw_confidence is not None else 0.0), success

    return list(await asyncio.gather(*(one(i, s) for i, s in enumerate(states))))


async def main_async(args: argparse.Namespace) -> int:
    from engine.sampler import local_sampler

    async with local_sampler(args.model) as sampler:
        rng = random.Random(args.seed)
        it = data.visited_states(rng, heldout=True)
        fit_states = [next(it) for _ in range(args.fit)]
        eval_states = [next(it) for _ in range(args.eval)]
        print(f"fitting on {len(fit_states)} held-out plans…", file=sys.stderr)
        fit_pairs = await turn_outcomes(sampler, fit_states, args.seed, args.stall)
        cmap = fit_map([c for c, _ in fit_pairs], [y for _, y in fit_pairs], CalibrationPolicy())
        print(f"evaluating on {len(eval_states)} other held-out plans…", file=sys.stderr)
        pairs = await turn_outcomes(sampler, eval_states, args.seed + 10_000, args.stall)
        raw = [c for c, _ in pairs]
        cal = [cmap(c) for c in raw]
        ys = [y for _, y in pairs]
        calibrator = DomainCalibrator({DOMAIN: cmap})
        pool = env.start_states(heldout=True)
        starts = [rng.choice(pool) for _ in range(args.episodes)]
        cfg = PlanConfig(algorithm=Algorithm.BRANCH_COMMIT, width=4, commit_threshold=0.9, domain=DOMAIN,
                         max_tokens_per_turn=128)
        print(f"branch_commit on {len(starts)} held-out episodes, raw then calibrated…", file=sys.stderr)
        raw_success, raw_tok = await run_planner(sampler, cfg, starts, args.seed, stall_prob=args.stall)
        cal_success, cal_tok = await run_planner(sampler, cfg, starts, args.seed, calibrator=calibrator,
                                                 stall_prob=args.stall)
    e_raw, e_cal = expected_calibration_error(raw, ys), expected_calibration_error(cal, ys)
    b_raw, b_cal = brier_score(raw, ys), brier_score(cal, ys)
    print(f"deployed world: actions stall with probability {args.stall} (the model learnt {env.STALL_PROB})")
    print(f"map: {cmap.kind} fitted on {len(fit_pairs)} outcomes (success rate "
          f"{sum(y for _, y in fit_pairs) / len(fit_pairs):.3f})")
    print(f"{'confidence':<12}{'ECE':>8}{'Brier':>8}{'branch_commit success':>23}{'tokens/decision':>17}")
    print(f"{'raw':<12}{e_raw:>8.4f}{b_raw:>8.4f}{raw_success:>23.3f}{raw_tok:>17.0f}")
    print(f"{'calibrated':<12}{e_cal:>8.4f}{b_cal:>8.4f}{cal_success:>23.3f}{cal_tok:>17.0f}")
    print(f"ratios calibrated/raw: ECE {e_cal / e_raw if e_raw else float('nan'):.2f}, "
          f"Brier {b_cal / b_raw if b_raw else float('nan'):.2f}, "
          f"success {cal_success / raw_success if raw_success else float('nan'):.2f}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(REPO / "models" / "foresight-numberreach"))
    ap.add_argument("--fit", type=int, default=400, help="held-out plans whose outcomes fit the map")
    ap.add_argument("--eval", type=int, default=400, help="other held-out plans to evaluate on")
    ap.add_argument("--episodes", type=int, default=100, help="held-out episodes for branch_commit")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stall", type=float, default=0.45,
                    help=f"how often an action stalls in the deployed world (the model learnt {env.STALL_PROB})")
    args = ap.parse_args()
    if not 0.0 <= args.stall < 1.0:
        ap.error(f"--stall must be within [0, 1), got {args.stall}")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
