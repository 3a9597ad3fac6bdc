"""Planner benchmark on the reference environment's held-out episodes.

Episode success and generated tokens per decision for greedy, best_of_n (N=4, 8),
branch_commit and lookahead — all through the real engine (vLLM on CPU) and the
server's planning service — beside the environment's reactive heuristic, the
exact one-step rollout planner and the exact optimum. One table, one PNG plot.
Also the planner's own overhead (parse + decide) per candidate, without the engine.

Targets: branch_commit succeeds at least as often as best_of_8 with <= 50% of its
tokens; lookahead beats the exact one-step rollout planner.

    .venv/bin/python bench/planner.py [--episodes 200] [--plot bench/planner.png]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from planner.format import parse_turn  # noqa: E402
from planner.search import Algorithm, Budget, LookaheadContext, PlanConfig, plan  # noqa: E402
from planner.search.base import Sample, SampleBatch, ranked  # noqa: E402
from reference import data, env  # noqa: E402
from reference.evaluate import action_op, run_episodes  # noqa: E402

CONFIGS: dict[str, PlanConfig] = {
    "greedy": PlanConfig(algorithm=Algorithm.GREEDY, turn_max_tokens=128),
    "best_of_4": PlanConfig(algorithm=Algorithm.BEST_OF_N, width=4, turn_max_tokens=128),
    "best_of_8": PlanConfig(algorithm=Algorithm.BEST_OF_N, width=8, turn_max_tokens=128),
    "branch_commit": PlanConfig(algorithm=Algorithm.BRANCH_COMMIT, width=4, commit_threshold=0.9,
                                budget=Budget(max_candidates=8), turn_max_tokens=128),
    "lookahead": PlanConfig(algorithm=Algorithm.LOOKAHEAD, width=16, branch=5,
                            budget=Budget(max_depth=2, max_candidates=16 + 5 * 16, max_tokens=8192, deadline_s=600),
                            lookahead_context=LookaheadContext.OBSERVATION, turn_max_tokens=128),
}


async def run_planner(sampler: object, config: PlanConfig, starts: list[env.State], seed: int,
                      concurrency: int = 16, calibrator: object = None,
                      stall_prob: float = env.STALL_PROB) -> tuple[float, float]:
    sem = asyncio.Semaphore(concurrency)
    tokens: list[int] = []

    async def episode(i: int, start: env.State) -> bool:
        rng = random.Random(seed * 7919 + i)
        state = start
        while not state.done:
            async with sem:
                cfg = PlanConfig(**{**config.__dict__, "seed": rng.randrange(2**31)})
                result = await plan(sampler, data.prompt_for(state), cfg, calibrator)  # type: ignore[arg-type]
            tokens.append(result.usage.completion_tokens)
            op = action_op(result.chosen.turn) if result.chosen else None
            if op is None:
                return False
            state = env.step(state, op, rng, stall_prob).state
        return state.success

    results = await asyncio.gather(*(episode(i, s) for i, s in enumerate(starts)))
    return sum(results) / len(results), sum(tokens) / max(len(tokens), 1)


class _FixedSampler:
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


async def main_async(args: argparse.Namespace) -> list[tuple[str, float, float]]:
    from server.config import Settings
    from server.engine.vllm_engine import VllmEngine, VllmEngineConfig
    from server.services.generation import GenerationService
    from server.services.planning import EngineSampler

    model = Path(args.model)
    engine = VllmEngine(VllmEngineConfig(model=str(model), served_model_name=model.name, dtype="float32",
                                         log_stats=False))
    await engine.start()
    rows: list[tuple[str, float, float]] = []
    try:
        sampler = EngineSampler(GenerationService(engine, Settings(model=str(model))), add_special_tokens=True)
        rng = random.Random(args.seed)
        pool = env.start_states(heldout=True)
        starts = [rng.choice(pool) for _ in range(args.episodes)]
        for name in ("reactive", "one_step", "optimal"):
            rows.append((name, await run_episodes(None, name, starts, args.seed, show=False), 0.0))
        for name, cfg in CONFIGS.items():
            t0 = time.monotonic()
            rate, tok = await run_planner(sampler, cfg, starts, args.seed)
            print(f"  {name}: {rate:.3f} success, {tok:.0f} tokens/decision ({time.monotonic() - t0:.0f}s)",
                  file=sys.stderr)
            rows.append((name, rate, tok))
    finally:
        await engine.close()
    return rows


def plot(rows: list[tuple[str, float, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, rate, tok in rows:
        if tok:
            ax.scatter(tok, rate, s=60)
            ax.annotate(name, (tok, rate), textcoords="offset points", xytext=(5, 5))
        else:
            ax.axhline(rate, linestyle="--", linewidth=1, color="grey")
            ax.annotate(name, (0, rate), textcoords="offset points", xytext=(2, 3), color="grey")
    ax.set_xlabel("generated tokens per decision")
    ax.set_ylabel("episode success (held-out)")
    ax.set_title("NumberReach: planning with the model's own foresight")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(REPO / "models" / "foresight-numberreach"))
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", default=str(REPO / "bench" / "planner.png"))
    args = ap.parse_args()
    rows = asyncio.run(main_async(args))
    by = {name: (rate, tok) for name, rate, tok in rows}
    print(f"{'policy':<16}{'success':>9}{'tokens/decision':>17}")
    for name, rate, tok in rows:
        print(f"{name:<16}{rate:>9.3f}{(f'{tok:.0f}' if tok else '-'):>17}")
    bc, b8, la, one = by["branch_commit"], by["best_of_8"], by["lookahead"], by["one_step"]
    print(f"branch_commit vs best_of_8: success {bc[0]:.3f} vs {b8[0]:.3f}, tokens ratio {bc[1] / b8[1]:.2f} "
          f"(target: success >=, tokens <= 0.50): {'PASS' if bc[0] >= b8[0] and bc[1] <= 0.5 * b8[1] else 'MISS'}")
    print(f"lookahead vs exact one-step planner: {la[0]:.3f} vs {one[0]:.3f}: {'PASS' if la[0] > one[0] else 'MISS'}")
    overhead = planner_overhead_ms()
    print(f"planner overhead per candidate (parse + decide, no engine): {overhead:.3f} ms "
          f"(target < 1 ms): {'PASS' if overhead < 1 else 'MISS'}")
    plot(rows, Path(args.plot))
    print(f"plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
