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

On a pretrained chat base (``--model models/smollm2-135m-instruct --adapter NAME=PATH``) the observation is
the user's message (``messages``, the base's chat template, as the adapters were trained), every request names
the adapter, and the client's best-of-8 is one ``/v1/chat/completions`` call with n=8.

    .venv/bin/python bench/decisions.py [--agents 1 8 32] [--episodes 48] [--block-sizes 128 32] [--plot P]
    .venv/bin/python bench/decisions.py --model models/smollm2-135m-instruct \
        --adapter foresight=models/smollm2-foresight-numberreach --agents 1 8 --episodes 16
"""

from __future__ import annotations

import argparse
import asyncio
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

from planner.format import ACTION_STOPS, CONFIDENCE_STOP, parse_turn  # noqa: E402
from planner.params import from_mapping  # noqa: E402
from planner.search import PlanConfig, Sample, SampleBatch, TextSampler, plan  # noqa: E402
from reference import data  # noqa: E402
from reference import numberreach as env  # noqa: E402
from reference.planning import one_step_advantage, paired_estimate  # noqa: E402
from reference.random_checkpoint import WORDS, build  # noqa: E402
from tests.conftest import REFERENCE_MODEL  # noqa: E402
from tests.integration.server_process import ServerProcess, launch_server, wait_ready  # noqa: E402


@dataclass(frozen=True)
class Target:
    """What the agents ask: ``model`` (None: the server's default), and whether observations go as a chat's
    user message (a pretrained chat base) or as the raw prompt (the reference model)."""

    model: str | None = "foresight-numberreach"
    chat: bool = False

    def observation(self, state: env.State) -> dict[str, Any]:
        prompt = data.prompt_for(state)
        body: dict[str, Any] = {"messages": [{"role": "user", "content": prompt.strip()}]} if self.chat else \
            {"prompt": prompt}
        return {**body, "model": self.model} if self.model else body


REFERENCE = Target()
# the reference configurations (reference/planning.py) as /v1/plan bodies
WAYS: dict[str, dict[str, Any] | None] = {
    "plan greedy": {"algorithm": "greedy", "max_tokens_per_turn": 128},
    "plan best_of_8": {"algorithm": "best_of_n", "width": 8, "max_tokens_per_turn": 128},
    "plan branch_commit": {"algorithm": "branch_commit", "width": 2, "commit_threshold": 0.5,
                           "budget": {"max_candidates": 16}, "max_tokens_per_turn": 128},
    # width_growth (issue 28): 2, then 4, then 8 spans while none claims 0.5 — bench/commit_rules.py's
    # replay: as good as best_of_8 (loss −0.0003 ± 0.0019) in 2.44 engine calls a decision, not 3.36
    "plan branch_commit 2x2": {"algorithm": "branch_commit", "width": 2, "width_growth": 2, "commit_threshold": 0.5,
                               "budget": {"max_candidates": 14}, "max_tokens_per_turn": 128},
    # one span first: 38% of best_of_8's tokens, loss within one SE of its (+0.0021 ± 0.0024)
    "plan branch_commit 1x2": {"algorithm": "branch_commit", "width": 1, "width_growth": 2, "commit_threshold": 0.5,
                               "budget": {"max_candidates": 15}, "max_tokens_per_turn": 128},
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
    plans: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)  # M = 1: prompt, candidates


def decide(client: httpx.Client, way: str, state: env.State, seed: int, record: Tally | None = None,
           target: Target = REFERENCE) -> tuple[str | None, int]:
    """One decision: the environment op chosen, and the tokens generated for it; a plan's candidates
    go to ``record`` if given."""
    prompt = data.prompt_for(state)
    body = WAYS[way]
    if body is not None:
        r = client.post("/v1/plan", json={**body, **target.observation(state), "seed": seed})
        r.raise_for_status()
        plan = r.json()
        if record is not None:
            record.plans.append((prompt, plan["candidates"]))
        action = (plan.get("action") or {}).get("arguments") if plan.get("action") else None
        return (data.op_of_action(action) if action else None), plan["usage"]["completion_tokens"]
    r = client.post("/v1/chat/completions" if target.chat else "/v1/completions",
                    json={**target.observation(state), "n": 8, "max_tokens": 128, "temperature": 1.0,
                          "stop": list(ACTION_STOPS), "seed": seed})
    r.raise_for_status()
    out = r.json()
    best_op, best_conf = None, -1.0
    for choice in out["choices"]:  # the client's own pick: highest stated confidence with a usable action
        if target.chat:
            choice = {**choice, "text": choice["message"]["content"] or ""}
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


def play(base: str, way: str, starts: list[env.State], agents: int, seed: int,
         target: Target = REFERENCE) -> Tally:
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
                    op, tokens = decide(client, way, state, rng.randrange(2**31), tally if agents == 1 else None,
                                        target)
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


class Replay(TextSampler):
    """The planner's sampler, answering from one recorded plan's candidates (in the order they were
    drawn) instantly: what is left of a decision's time is the planner's own."""

    def __init__(self, prompt: str, candidates: list[dict[str, Any]]) -> None:
        self.prompt, self.queue = prompt, [c["text"] for c in candidates]
        self.drawn: list[str] = []

    async def sample(self, prompt: str, n: int, *, stop: Any, max_tokens: int, temperature: float,
                     top_p: float = 1.0, seed: int | None = None) -> SampleBatch:
        if prompt != self.prompt:  # a continuation of a span drawn before: the rest of its turn
            span = prompt[len(self.prompt):]
            whole = next((t for t in self.drawn if t.startswith(span)), span)
            return SampleBatch([Sample(whole[len(span):], max(1, len(whole) - len(span)), "stop")], len(prompt))
        out = []
        for _ in range(n):
            text = self.queue.pop(0) if self.queue else ""
            self.drawn.append(text)
            if CONFIDENCE_STOP in stop and CONFIDENCE_STOP in text:
                text = text[: text.index(CONFIDENCE_STOP) + len(CONFIDENCE_STOP)]
            out.append(Sample(text, max(1, len(text) // 3), "stop"))
        return SampleBatch(out, len(prompt))


async def replay_cpu(plans: list[tuple[str, list[dict[str, Any]]]], config: PlanConfig) -> float:
    """CPU seconds the planner spends on ``plans`` replayed one after another."""
    spent = 0.0
    for prompt, candidates in plans:
        start = time.process_time()
        await plan(Replay(prompt, candidates), prompt, config)
        spent += time.process_time() - start
    return spent


def planner_cpu(results: dict[tuple[str, int], Tally]) -> None:
    """The planner's own CPU time per decision at M = 1 (its recorded plans replayed without the engine),
    against the median decision latency measured there."""
    print("\nthe planner's own CPU time at M = 1 (recorded plans replayed without the engine):")
    for (way, m), t in results.items():
        body = WAYS.get(way.split(" (block")[0])
        if m != 1 or not t.plans or body is None:
            continue
        cpu = asyncio.run(replay_cpu(t.plans, from_mapping(PlanConfig, body))) / len(t.plans)
        p50 = statistics.median(t.latencies)
        print(f"  {way:28s} {cpu * 1000:7.3f} ms a decision, {cpu / p50:6.2%} of its p50 latency "
              f"({p50 * 1000:.0f} ms)")


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


def long_history(work: Path, plans: int, block: int, seed: int) -> None:
    """``branch_commit`` on 1,000+-token prompts (a tiny random long-context checkpoint, which says nothing
    about quality): how much of each continuation's re-sent candidate span vLLM's prefix cache served.

    Per plan: P, the prompt's tokens; C and C_cached, the continuation's prompt tokens and those the cache
    served. The span re-sent is C − P, the part of it served max(0, C_cached − P). Only whole blocks are
    cached and an engine computes a prompt's last token itself, so the most it can serve is
    ⌊(C − 1) / block⌋ · block − P: both are printed."""
    model = build(work / "long-model", context=2048, hidden=64, layers=2, kv_heads=1)
    server = wait_ready(launch_server(model, work, env={"FORESIGHT_MAX_MODEL_LEN": "2048",
                                                         "FORESIGHT_BLOCK_SIZE": str(block)}))
    rng = random.Random(seed)
    totals = {"history": 0, "span": 0, "served": 0, "ceiling": 0, "plans": 0}
    try:
        with httpx.Client(base_url=server.url, timeout=600) as client:
            name = client.get("/v1/models").json()["data"][0]["id"]
            for i in range(plans):
                prompt = " ".join(rng.choice(WORDS) for _ in range(1000)) + f"\n<information>turn {i}</information>\n"
                count = client.post("/v1/completions", json={"model": name, "prompt": prompt, "max_tokens": 1})
                history = count.raise_for_status().json()["usage"]["prompt_tokens"]
                r = client.post("/v1/plan", json={"prompt": prompt, "algorithm": "branch_commit", "width": 2,
                                                  "budget": {"max_candidates": 4}, "max_tokens_per_turn": 256,
                                                  "seed": seed * 1000 + i})
                details = r.raise_for_status().json()["usage"]["prompt_tokens_details"]
                resent = details["continuation_prompt_tokens"]
                if resent <= history:  # nothing continued (no span)
                    continue
                totals["plans"] += 1
                totals["history"] += history
                totals["span"] += resent - history
                totals["served"] += max(0, details["continuation_cached_tokens"] - history)
                totals["ceiling"] += max(0, (resent - 1) // block * block - history)
    finally:
        server.stop()
    n = max(totals["plans"], 1)
    print(f"\nlong history, block {block}: {totals['plans']} branch_commit plans, prompts of "
          f"{totals['history'] / n:.0f} tokens, spans of {totals['span'] / n:.0f}: the prefix cache served "
          f"{totals['served'] / max(totals['span'], 1):.3f} of the continuations' re-sent spans (whole blocks "
          f"allow {totals['ceiling'] / max(totals['span'], 1):.3f})")


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
    p.add_argument("--long-history", type=int, default=0, metavar="PLANS",
                   help="also: PLANS branch_commit plans on 1,000+-token prompts, the span share the cache served")
    p.add_argument("--only-long-history", action="store_true", help="only the --long-history part")
    p.add_argument("--model", type=Path, default=REFERENCE_MODEL,
                   help="the checkpoint served (default: the reference model; a chat base takes --adapter)")
    p.add_argument("--adapter", metavar="NAME=PATH", help="serve this adapter on --model and ask it by name")
    args = p.parse_args()
    target, extra, env_model = REFERENCE, [], {}
    if args.model.resolve() != REFERENCE_MODEL.resolve():  # a pretrained chat base, in bfloat16 as trained
        name = args.adapter.partition("=")[0] if args.adapter else None
        target, env_model = Target(name, chat=True), {"FORESIGHT_DTYPE": "bfloat16", "FORESIGHT_MAX_MODEL_LEN": "2048"}
        extra = ["--adapter", args.adapter] if args.adapter else []
    elif args.adapter:
        p.error("--adapter needs --model (the base the adapter was trained on)")
    rng = random.Random(args.seed)
    pool = data.visited_states(rng, heldout=True)
    starts = [next(pool) for _ in range(args.episodes)]
    work = Path(tempfile.mkdtemp(prefix="decisions-"))
    env_vars = {"FORESIGHT_TCO_HARDWARE_PRICE": str(args.hardware_price),
                "FORESIGHT_TCO_POWER_WATTS": str(args.power_watts), "FORESIGHT_MAX_QUEUE": "256",
                "FORESIGHT_MAX_NUM_SEQS": "256"}
    if args.long_history:
        long_history(work, args.long_history, next((b for b in args.block_sizes if b), 32), args.seed)
    if args.only_long_history:
        return 0
    results: dict[tuple[str, int], Tally] = {}
    for bs in args.block_sizes:
        block = {"FORESIGHT_BLOCK_SIZE": str(bs)} if bs else {}
        server = wait_ready(launch_server(args.model, work, *extra, env={**env_vars, **block, **env_model}))
        try:
            for m in args.agents:
                for way in args.ways:
                    before = counters(server)
                    t = play(server.url, way, starts, m, args.seed, target)
                    after = counters(server)
                    t.cost = after.get("cost", 0.0) - before.get("cost", 0.0)
                    t.cache = {k: after[k] - before.get(k, 0.0) for k in after if k != "cost"}
                    label = f"{way} (block {bs})" if len(args.block_sizes) > 1 else way
                    results[(label, m)] = t
                    print(summary_line(label, m, t), flush=True)
        finally:
            server.stop()
    report(results, starts, args)
    planner_cpu(results)
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
