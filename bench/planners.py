"""Planner benchmark on the reference environment's held-out episodes.

Episode success and generated tokens per decision for greedy, best_of_n (N=4, 8),
branch_commit and lookahead — the planner's algorithms on a real engine (vLLM on CPU) loaded
in-process (``engine.sampler.local_sampler``; no server) — beside the environment's reactive heuristic, the
exact one-step rollout planner and the exact optimum. One table, one PNG plot.
Also the planner's own overhead (parse + decide) per candidate, without the engine.

Targets: branch_commit succeeds at least as often as best_of_8 with <= 50% of its
tokens; lookahead beats the exact one-step rollout planner.

    .venv/bin/python bench/planners.py [--episodes 200] [--only lookahead ...] [--plot bench/planners.png]

The configurations and the episode loop live in reference/planning.py (``foresight reference eval
--planners`` plays the same ones).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

from planner.format import parse_turn
from planner.params import positive
from planner.search import Algorithm, PlanConfig, plan
from planner.search.base import Sample, SampleBatch, TextSampler, ranked
from reference import data
from reference import numberreach as env
from reference.evaluate import run_episodes
from reference.planning import PLANNERS, one_step_expectation, paired_estimate, run_planner

REPO = Path(__file__).resolve().parents[1]


class _FixedSampler(TextSampler):
    """Replays canned candidates: measures the planner's own cost without an engine."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    async def sample(self, prompt: str, n: int, **_: object) -> SampleBatch:
        return SampleBatch([Sample(self.texts[i % len(self.texts)], 60) for i in range(n)], 20)


def planner_overhead_ms(repeats: int = 2000) -> float:
    state = env.State(7, 52, 6)
    texts = [data.make_turn(state, data.sample_plan(state, random.Random(i))).completion for i in range(8)]
    t0 = time.perf_counter()
    for _ in range(repeats):
        for t in texts:
            parse_turn(t)
        ranked([])
    parse_ms = (time.perf_counter() - t0) * 1000 / (repeats * len(texts))

    async def many() -> None:
        for _ in range(200):
            await plan(_FixedSampler(texts), "p", PlanConfig(algorithm=Algorithm.BEST_OF_N, width=8))

    t0 = time.perf_counter()
    asyncio.run(many())
    decide_ms = (time.perf_counter() - t0) * 1000 / (200 * 8)
    return max(parse_ms, decide_ms)


async def main_async(args: argparse.Namespace) -> tuple[list[tuple[str, float, float]], dict[str, tuple[float, float]]]:
    from engine.sampler import local_sampler

    rows: list[tuple[str, float, float]] = []
    estimates: dict[str, tuple[float, float]] = {}
    async with local_sampler(args.model) as sampler:
        rng = random.Random(args.seed)
        pool = env.start_states(heldout=True)
        starts = [rng.choice(pool) for _ in range(args.episodes)]
        for name in ("reactive", "one_step", "optimal"):
            rows.append((name, await run_episodes(None, name, starts, args.seed, show=False), 0.0))
        estimates["one_step"] = (one_step_expectation(starts), 0.0)
        for name, cfg in PLANNERS.items():
            if args.only and name not in args.only:
                continue
            t0 = time.monotonic()
            gains: list[float] = []
            rate, tok = await run_planner(sampler, cfg, starts, args.seed, gains=gains)
            estimates[name] = paired_estimate(starts, gains)
            print(f"  {name}: {rate:.3f} success, {tok:.0f} tokens/decision ({time.monotonic() - t0:.0f}s)",
                  file=sys.stderr)
            rows.append((name, rate, tok))
    return rows, estimates


async def search_async(args: argparse.Namespace) -> tuple[list[tuple[str, float, float]],
                                                         dict[str, tuple[float, float]]]:
    """The same table in the search world."""
    from engine.sampler import local_sampler
    from reference.planning import mean_se
    from reference.search import env as search_env
    from reference.search.evaluate import run_episodes as search_episodes
    from reference.search.planning import PLANNERS as SEARCH_PLANNERS
    from reference.search.planning import run_planner as search_planner

    world = search_env.World()
    starts = search_env.balanced_starts(world, True, args.episodes, random.Random(args.seed))
    rows: list[tuple[str, float, float]] = []
    estimates: dict[str, tuple[float, float]] = {}
    for name in ("random", "reactive", "optimal"):
        rate, est = await search_episodes(None, world, name, starts, args.seed, show=False)
        rows.append((name, rate, 0.0))
        estimates[name] = mean_se(est)
    async with local_sampler(args.model) as sampler:
        for name, cfg in SEARCH_PLANNERS.items():
            if args.only and name not in args.only:
                continue
            t0 = time.monotonic()
            per_episode: list[float] = []
            rate, tok = await search_planner(world, sampler, cfg, starts, args.seed, estimates=per_episode)
            estimates[name] = mean_se(per_episode)
            print(f"  {name}: {rate:.3f} success, {tok:.0f} tokens/decision ({time.monotonic() - t0:.0f}s)",
                  file=sys.stderr)
            rows.append((name, rate, tok))
    return rows, estimates


def search_report(rows: list[tuple[str, float, float]], estimates: dict[str, tuple[float, float]]) -> None:
    by = {name: (rate, tok) for name, rate, tok in rows}
    print(f"{'policy':<16}{'success':>9}{'paired est.':>18}{'tokens/decision':>17}")
    for name, rate, tok in rows:
        value, se = estimates[name]
        print(f"{name:<16}{rate:>9.3f}{f'{value:.3f} ± {se:.3f}':>18}{(f'{tok:.0f}' if tok else '-'):>17}")
    print("(paired est.: the exact optimum's value from the same starts plus the mean of the policy's exact "
          "advantages Q*(s, a) - V*(s) along its own episodes, ± 1 SE)")
    if {"greedy", "best_of_8", "optimal"} <= set(by):
        g, b, o = (estimates[k][0] for k in ("greedy", "best_of_8", "optimal"))
        closed = (b - g) / (o - g) if o > g else float("nan")
        print(f"best_of_8 closes {closed:.2f} of greedy's gap to the optimum (target >= 0.5): "
              f"{_verdict(closed >= 0.5)}")
    if "branch_commit" in by and "best_of_8" in by:
        (bc, se_bc), (b8, se_b8) = estimates["branch_commit"], estimates["best_of_8"]
        ratio = by["branch_commit"][1] / by["best_of_8"][1]
        se = (se_bc**2 + se_b8**2) ** 0.5
        print(f"branch_commit vs best_of_8: paired {bc:.3f} vs {b8:.3f} (difference {bc - b8:+.3f}, SE {se:.3f}), "
              f"tokens ratio {ratio:.2f} (target: within one SE, <= 0.40): {_verdict(bc >= b8 - se and ratio <= 0.4)}")


def plot(rows: list[tuple[str, float, float]], path: Path, title: str = "NumberReach") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    placed = 0
    for name, rate, tok in rows:
        if tok:
            ax.scatter(tok, rate, s=60)
            # alternate above/below: planners often tie on success
            ax.annotate(name, (tok, rate), textcoords="offset points", xytext=(6, 6 if placed % 2 == 0 else -12))
            placed += 1
        else:  # simulator baselines: a line, labelled at the left edge
            ax.axhline(rate, linestyle="--", linewidth=1, color="grey")
            ax.annotate(name, (0.0, rate), xycoords=("axes fraction", "data"), textcoords="offset points",
                        xytext=(4, 3), color="grey")
    ax.set_xscale("log")  # tokens per decision span two orders of magnitude
    ax.margins(x=0.2)
    ax.set_xlabel("generated tokens per decision (log scale)")
    ax.set_ylabel("episode success (held-out)")
    ax.set_title(f"{title}: planning with the model's own foresight")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(rows: list[tuple[str, float, float]], estimates: dict[str, tuple[float, float]]) -> None:
    by = {name: (rate, tok) for name, rate, tok in rows}
    print(f"{'policy':<16}{'success':>9}{'paired est.':>18}{'tokens/decision':>17}")
    for name, rate, tok in rows:
        value, se = estimates.get(name, (0.0, 0.0))
        est = f"{value:.3f} (exact)" if name == "one_step" else f"{value:.3f} ± {se:.3f}"
        est = est if name in estimates else "-"
        print(f"{name:<16}{rate:>9.3f}{est:>18}{(f'{tok:.0f}' if tok else '-'):>17}")
    print("(paired est.: the exact one-step planner's value from the same starts plus the mean of the policy's "
          "one-step advantages along its own episodes, ± 1 SE)")
    if "branch_commit" in by and "best_of_8" in by:
        bc, b8 = by["branch_commit"], by["best_of_8"]
        diff = estimates["branch_commit"][0] - estimates["best_of_8"][0]
        print(f"branch_commit vs best_of_8: success {bc[0]:.3f} vs {b8[0]:.3f} (paired estimates differ by "
              f"{diff:+.3f}), tokens ratio {bc[1] / b8[1]:.2f} (target: success >=, tokens <= 0.50): "
              f"{_verdict(bc[0] >= b8[0] and bc[1] <= 0.5 * b8[1])}")
    if "lookahead" in by:
        (est, se), one = estimates["lookahead"], estimates["one_step"][0]
        significance = "" if abs(est - one) >= 2 * se else " (within 2 SE: not significant)"
        print(f"lookahead vs exact one-step planner: played {by['lookahead'][0]:.3f} vs {by['one_step'][0]:.3f}: "
              f"{_verdict(by['lookahead'][0] > by['one_step'][0])}; paired estimate {est:.3f} vs {one:.3f} exact, "
              f"difference {est - one:+.3f} ± {se:.3f}: {_verdict(est > one)}{significance}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", choices=("numberreach", "search"), default="numberreach")
    ap.add_argument("--model", default=None, help="checkpoint (default: models/foresight-<world>)")
    ap.add_argument("--episodes", type=positive, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="+", choices=sorted(PLANNERS), metavar="NAME",  # the same names in both
                    help=f"run only these planner configurations ({', '.join(PLANNERS)})")
    ap.add_argument("--plot", default=str(REPO / "bench" / "planner.png"))
    args = ap.parse_args()
    args.model = args.model or str(REPO / "models" / f"foresight-{args.world}")
    if args.world == "search":
        rows, estimates = asyncio.run(search_async(args))
        search_report(rows, estimates)
        plot(rows, Path(args.plot), "Search world")
        print(f"plot written to {args.plot}")
        return 0
    rows, estimates = asyncio.run(main_async(args))
    report(rows, estimates)
    overhead = planner_overhead_ms()
    print(f"planner overhead per candidate (parse + decide, no engine): {overhead:.3f} ms "
          f"(target < 1 ms): {_verdict(overhead < 1)}")
    plot(rows, Path(args.plot))
    print(f"plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
