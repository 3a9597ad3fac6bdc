"""Decisions per second: M concurrent agents play held-out reference episodes against the real server,
through ``/v1/plan`` with each algorithm and, as a client would without us, through one
``/v1/completions`` call with n=8 that the client parses and picks from by confidence itself.

For each way and each M (agents at once): decisions per second, episode success (and the paired
estimate against the exact one-step planner, docs/planning.md, which is far less noisy), generated tokens
per decision, p50 and p99 decision latency, dollars per decision from the server's own TCO counters, and
the share of plan prompt tokens vLLM's prefix cache served (proposals and continuations apart). All in one
run, side by side, one table and one plot (decisions/s against success).

The TCO figures are the server's, with a configuration stated for this machine (a 2-core CPU server:
``--hardware-price``, ``--power-watts``); the server's defaults describe a GPU.

    .venv/bin/python bench/decisions.py [--agents 1 8 32] [--episodes 48] [--block-sizes 128 32] [--plot P]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == REPO / "bench":
    sys.path[0] = str(REPO)  # run as a script: tests.integration (the launchers) from the repository root

from planner.format import ACTION_STOPS, parse_turn  # noqa: E402
from reference import data, env  # noqa: E402
from reference.planning import one_step_advantage, paired_estimate  # noqa: E402
from tests.conftest import REFERENCE_MODEL  # noqa: E402
from tests.integration.server_process import ServerProcess, launch_server, wait_ready  # noqa: E402

MODEL = "foresight-numberreach"
# the reference configurations (reference/planning.py) as /v1/plan bodies
WAYS: dict[str, dict[str, Any] | None] = {
    "plan greedy": {"algorithm": "greedy", "max_tokens_per_turn": 128},
    "plan best_of_8": {"algorithm": "best_of_n", "width": 8, "max_tokens_per_turn": 128},
    "plan branch_commit": {"algorithm": "branch_commit", "width": 2, "commit_threshold": 0.5,
                           "budget": {"max_candidates": 16}, "max_tokens_per_turn": 128},
    "client best_of_8": None,  # one /v1/completions call, n=8, picked by the client
}


@dataclass
class Tally:
    """One way at one M."""

    decisions: int = 0
    tokens: int = 0
    latencies: list[float] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)
    gains: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    cost: float = 0.0
    cache: dict[str, float] = field(default_factory=dict)


def decide(client: httpx.Client, way: str, state: env.State, seed: int) -> tuple[str | None, int]:
    """One decision: the environment op chosen, and the tokens generated for it."""
    prompt = data.prompt_for(state)
    body = WAYS[way]
    if body is not None:
        r = client.post("/v1/plan", json={**body, "prompt": prompt, "seed": seed})
        r.raise_for_status()
        plan = r.json()
        action = (plan.get("action") or {}).get("arguments") if plan.get("action") else None
        return (data.op_of_action(action) if action else None), plan["usage"]["completion_tokens"]
    r = client.post("/v1/completions", json={"model": MODEL, "prompt": prompt, "n": 8, "max_tokens": 128,
                                             "temperature": 1.0, "stop": list(ACTION_STOPS), "seed": seed})
    r.raise_for_status()
    out = r.json()
    best_op, best_conf = None, -1.0
    for choice in out["choices"]:  # the client's own pick: highest stated confidence with a usable action
        turn = parse_turn(choice["text"] + _stop_of(choice))
        op = data.op_of_action(turn.action.arguments) if turn.action else None
        conf = turn.confidence if turn.confidence is not None else -1.0
        if op is not None and conf > best_conf:
            best_op, best_conf = op, conf
    return best_op, out["usage"]["completion_tokens"]


def _stop_of(choice: dict[str, Any]) -> str:
    """OpenAI's completions leave the stop string out; the turn parser wants the closing tag back."""
    text = choice["text"]
    opened = [s for s in ACTION_STOPS if s.replace("</", "<") in text and s not in text]
    return opened[0] if choice.get("finish_reason") == "stop" and opened else ""


def play(base: str, way: str, starts: list[env.State], agents: int, seed: int) -> Tally:
    tally = Tally()
    queue = list(enumerate(starts))

    def agent(_: int) -> None:
        with httpx.Client(base_url=base, timeout=600) as client:
            while queue:
                try:
                    i, state = queue.pop()
                except IndexError:
                    return
                rng = random.Random(seed * 7919 + i)
                gain = 0.0
                while not state.done:
                    t0 = time.perf_counter()
                    op, tokens = decide(client, way, state, rng.randrange(2**31))
                    tally.latencies.append(time.perf_counter() - t0)
                    tally.decisions += 1
                    tally.tokens += tokens
                    gain += one_step_advantage(state, op)
                    if op is None:
                        break
                    state = env.step(state, op, rng).state
                tally.successes.append(state.success)
                tally.gains.append(gain)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(agents) as pool:
        list(pool.map(agent, range(agents)))
    tally.wall_s = time.perf_counter() - t0
    return tally


def counters(server: ServerProcess) -> dict[str, float]:
    """The server's cost so far and its plans' prefix-cache counters."""
    out: dict[str, float] = {}
    for line in httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines():
        if line.startswith("foresight_cost_usd_total{"):
            out["cost"] = out.get("cost", 0.0) + float(line.rsplit(" ", 1)[1])
        elif line.startswith("foresight_plan_prefix_cache_tokens_total{"):
            labels = line[line.index("{") + 1:line.index("}")]
            key = ",".join(part.split("=")[1].strip('"') for part in labels.split(","))
            out[key] = float(line.rsplit(" ", 1)[1])
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--agents", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--episodes", type=int, default=48, help="held-out episodes per way and M")
    p.add_argument("--ways", nargs="+", default=list(WAYS), choices=list(WAYS))
    p.add_argument("--block-sizes", type=int, nargs="+", default=[0],
                   help="the engine's KV block sizes to run, one server each (0: the engine's default)")
    p.add_argument("--hardware-price", type=float, default=2000.0, help="TCO: this machine's price")
    p.add_argument("--power-watts", type=float, default=65.0, help="TCO: its power when busy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", type=Path)
    args = p.parse_args()
    rng = random.Random(args.seed)
    pool = data.visited_states(rng, heldout=True)
    starts = [next(pool) for _ in range(args.episodes)]
    work = Path(tempfile.mkdtemp(prefix="decisions-"))
    env_vars = {"FORESIGHT_TCO_HARDWARE_PRICE": str(args.hardware_price),
                "FORESIGHT_TCO_POWER_WATTS": str(args.power_watts), "FORESIGHT_MAX_QUEUE": "256",
                "FORESIGHT_MAX_NUM_SEQS": "256"}
    results: dict[tuple[str, int], Tally] = {}
    for bs in args.block_sizes:
        block = {"FORESIGHT_BLOCK_SIZE": str(bs)} if bs else {}
        server = wait_ready(launch_server(REFERENCE_MODEL, work, env={**env_vars, **block}))
        try:
            for m in args.agents:
                for way in args.ways:
                    before = counters(server)
                    t = play(server.url, way, starts, m, args.seed)
                    after = counters(server)
                    t.cost = after.get("cost", 0.0) - before.get("cost", 0.0)
                    t.cache = {k: after[k] - before.get(k, 0.0) for k in after if k != "cost"}
                    label = f"{way} (block {bs})" if len(args.block_sizes) > 1 else way
                    results[(label, m)] = t
                    print(summary_line(label, m, t), flush=True)
        finally:
            server.stop()
    report(results, starts, args)
    if args.plot:
        plot(results, starts, args.plot)
        print(f"plot: {args.plot}")
    return 0


def summary_line(way: str, m: int, t: Tally) -> str:
    lat = sorted(t.latencies)
    return (f"{way:32s} M={m:<3d} {t.decisions / t.wall_s:6.2f} decisions/s, success "
            f"{sum(t.successes) / len(t.successes):.3f}, {t.tokens / t.decisions:6.1f} tokens/decision, "
            f"p50 {statistics.median(lat) * 1000:6.0f} ms p99 {lat[int(0.99 * (len(lat) - 1))] * 1000:6.0f} ms, "
            f"${t.cost / t.decisions:.2e}/decision")


def report(results: dict[tuple[str, int], Tally], starts: list[env.State], args: argparse.Namespace) -> None:
    print(f"\n{args.episodes} held-out episodes per row; TCO: hardware {args.hardware_price:.0f} over 4 years, "
          f"{args.power_watts:.0f} W when busy, PUE 1.4, 0.15/kWh; block sizes {args.block_sizes} (0: default)")
    print("| way | agents | decisions/s | success | paired estimate ± SE | tokens/decision | p50 ms | p99 ms "
          "| $/decision | plan prompt cached (proposal / continuation) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for (way, m), t in results.items():
        est, se = paired_estimate(starts, t.gains)
        lat = sorted(t.latencies)
        cache = t.cache
        prop = _share(cache, "proposal")
        cont = _share(cache, "continuation")
        print(f"| {way} | {m} | {t.decisions / t.wall_s:.2f} | {sum(t.successes) / len(t.successes):.3f} | "
              f"{est:.3f} ± {se:.3f} | {t.tokens / t.decisions:.1f} | {statistics.median(lat) * 1000:.0f} | "
              f"{lat[int(0.99 * (len(lat) - 1))] * 1000:.0f} | {t.cost / t.decisions:.2e} | {prop} / {cont} |")


def _share(cache: dict[str, float], call: str) -> str:
    queried = cache.get(f"{call},queried", 0.0)
    return "–" if not queried else f"{cache.get(f'{call},cached', 0.0) / queried:.2f} of {queried:.0f}"


def plot(results: dict[tuple[str, int], Tally], starts: list[env.State], out: Path) -> None:
    """Decisions per second against success (the paired estimate, ± 1 SE), one line per way through M."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for way in dict.fromkeys(w for w, _ in results):
        pts = [(t.decisions / t.wall_s, *paired_estimate(starts, t.gains), m)
               for (w, m), t in results.items() if w == way]
        line = ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o",
                           capsize=3, label=way)
        for x, y, _, m in pts:
            ax.annotate(f"{m}", (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7,
                        color=line[0].get_color())
    ax.set_xlabel("decisions per second (labels: agents at once)")
    ax.set_ylabel("success (paired estimate ± 1 SE)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
