"""The format-capability gap, caught live: a format-only adapter and a real one side by side on one base.

One server holds the base (SmolLM2-135M-Instruct) and two adapters: (i) FE-SFT only, which writes the foresight
format, and (iii) WM-AMT → FE-SFT → FC-RL. An app plays NumberReach episodes against both through the typed
client, in one domain: it plans (``model`` names the adapter), carries out the plan it was given (its
rollout's operations, each retried after a stall) and reports the outcome — whether the plan reached the
target — with what really happened (the trajectory, in the rollout's own ``op value`` form, so the server
scores world-model fidelity); where steps remain and the target was missed, it plans again from there.
Nothing here knows the simulator's exact chances. The server's own figures per model (raw ECE and Brier
against outcomes, fidelity of rollouts to what happened, success) and a real Prometheus on the repo's alert
rules (scaled down, bench/drift_prometheus.py) tell the two apart.

    .venv/bin/python bench/format_gap.py            # ~7 min here; --episodes 40: 3.5 min

Prints one table; writes the reliability diagrams of both adapters to docs/images/format_gap.png.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from foresight_client.aio import AsyncForesight
from planner.format import parse_turn
from reference import data
from reference import numberreach as env
from reference.evaluate import plan_of

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]  # run as a script: the bench helpers and tests' launchers
from drift_prometheus import Prometheus  # noqa: E402
from serve_overhead import free_port, start, stop  # noqa: E402

MODELS = {"format-only": REPO / "models" / "smollm2-foresight-numberreach-fe-sft",
          "foresight": REPO / "models" / "smollm2-foresight-numberreach"}
DOMAIN = "numberreach"


@dataclass
class Played:
    """What the app saw of one model."""

    decisions: int = 0
    successes: int = 0  # plans that, carried out, reached the target
    episodes: int = 0
    episode_successes: int = 0
    no_plan: int = 0  # plans without a usable plan (the episode ends there)
    tokens: list[int] = field(default_factory=list)


def carry_out(state: env.State, ops: tuple[str, ...], rng: random.Random) -> tuple[env.State, str]:
    """A plan carried out in the world (each operation retried after a stall): the state it ends in, and the
    trajectory that really happened in the rollout's own form (``*2 10, *2 20 …``; ``bust`` out of bounds)."""
    steps = []
    for op in ops:
        while not state.done:
            result = env.step(state, op, rng)
            state = result.state
            if not result.stalled:
                steps.append(f"{op} {state.x}" + (" bust" if result.busted else ""))
                break
        if state.done:
            break
    return state, ", ".join(steps)


async def play(client: AsyncForesight, model: str, starts: list[env.State], params: dict, seed: int,
               concurrency: int) -> Played:
    played, sem = Played(), asyncio.Semaphore(concurrency)

    async def episode(i: int, start_state: env.State) -> None:
        rng, state = random.Random(seed * 7919 + i), start_state
        while not state.done:
            async with sem:
                plan = await client.plan(messages=[{"role": "user", "content": data.prompt_for(state).strip()}],
                                         model=model, domain=DOMAIN, seed=rng.randrange(2**31), **params)
            ops = plan_of(parse_turn(plan.text or ""))
            played.decisions += 1
            played.tokens.append(plan.usage.completion_tokens)
            if not ops:
                await client.report_outcome(plan.plan_id, False)
                played.no_plan += 1
                break
            state, happened = carry_out(state, ops, rng)
            played.successes += state.success
            await client.report_outcome(plan.plan_id, state.success, observation=happened or None)
        played.episodes += 1
        played.episode_successes += state.success

    await asyncio.gather(*(episode(i, s) for i, s in enumerate(starts)))
    return played


async def server_rows(client: AsyncForesight, played: dict[str, Played]) -> list[dict[str, object]]:
    rows = []
    for model, p in played.items():
        cal = await client.calibration(DOMAIN, model=model)
        d = cal.domains[0]
        rows.append({"model": model, "decisions": p.decisions, "plan success": p.successes / max(p.decisions, 1),
                     "episode success": p.episode_successes / max(p.episodes, 1),
                     "raw ECE": d.raw.ece, "raw Brier": d.raw.brier, "fidelity": d.fidelity_mean,
                     "tokens/decision": sum(p.tokens) / max(len(p.tokens), 1), "no plan": p.no_plan,
                     "bins": d.raw.bins})
    return rows


def plot(rows: list[dict[str, object]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(5 * len(rows), 4.4), sharey=True)
    for ax, row in zip(axes, rows, strict=True):
        bins = [b for b in row["bins"] if b.count]  # type: ignore[attr-defined]
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.scatter([b.mean_confidence for b in bins], [b.accuracy for b in bins],
                   s=[12 + 3 * b.count for b in bins], alpha=0.7)
        ax.set_title(f"{row['model']}: raw ECE {row['raw ECE']:.3f}, fidelity {row['fidelity']:.2f}")
        ax.set_xlabel("stated confidence")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("share of plans that succeeded")
    fig.suptitle("Format-capability gap, seen by the server from outcomes alone (NumberReach, SmolLM2-135M)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=str(REPO / "models" / "smollm2-135m-instruct"))
    ap.add_argument("--episodes", type=int, default=80, help="episodes per adapter (default 80)")
    ap.add_argument("--algorithm", default="greedy", help="the app's planning algorithm (default greedy)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", default=str(REPO / "docs" / "images" / "format_gap.png"))
    ap.add_argument("--no-prometheus", action="store_true", help="skip the alerts (no Debian prometheus)")
    a = ap.parse_args()
    for name, path in MODELS.items():
        if not (path / "adapter_config.json").is_file():
            raise SystemExit(f"format_gap: the adapter {name} is missing at {path}")
    work = Path(tempfile.mkdtemp(prefix="format-gap-"))
    port = free_port()
    cmd = [sys.executable, "-m", "foresight", "serve", "--model", a.base, "--port", str(port),
           *(arg for name, path in MODELS.items() for arg in ("--adapter", f"{name}={path}"))]
    started = time.monotonic()
    proc = start(cmd, port, "/ready", work / "server.log",
                 {"FORESIGHT_DTYPE": "bfloat16", "FORESIGHT_MAX_MODEL_LEN": "2048",
                  "FORESIGHT_STORE_PATH": str(work / "store.db"), "FORESIGHT_CALIBRATION_REFIT_INTERVAL_S": "1"})
    prom = None if a.no_prometheus else Prometheus.start(work, port)
    try:
        rng = random.Random(a.seed)
        pool = env.start_states(heldout=True)
        starts = [rng.choice(pool) for _ in range(a.episodes)]
        params = {"algorithm": a.algorithm}

        async def run() -> list[dict[str, object]]:
            async with AsyncForesight(f"http://127.0.0.1:{port}", timeout=300) as client:
                played = {}
                for name in MODELS:  # the same starts and seeds for both
                    played[name] = await play(client, name, starts, params, a.seed, a.concurrency)
                    print(f"{name}: {played[name].decisions} decisions", file=sys.stderr)
                await asyncio.sleep(3)  # the last outcomes' refits, and a scrape
                return await server_rows(client, played)

        rows = asyncio.run(run())
        if prom is not None:
            time.sleep(6)  # two scrapes and an evaluation after the last outcome
        print(f"format gap on {a.episodes} held-out NumberReach episodes per adapter, app algorithm {a.algorithm} "
              f"({time.monotonic() - started:.0f} s)")
        keys = ["decisions", "plan success", "episode success", "raw ECE", "raw Brier", "fidelity",
                "tokens/decision", "no plan"]
        print(f"{'model':<14}" + "".join(f"{k:>17}" for k in keys))
        for row in rows:
            cells = [f"{row[k]:>17.3f}" if isinstance(row[k], float) else f"{row[k]!s:>17}" for k in keys]
            print(f"{row['model']!s:<14}" + "".join(cells))
        if prom is not None:
            firing = [al for al in prom.alerts() if "firing" in al]
            print("alerts (repo rules, scaled down):", *(firing or ["none firing"]), sep="\n  ")
        plot(rows, Path(a.plot))
        print(f"wrote {a.plot}")
    finally:
        if prom is not None:
            prom.stop()
        stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
