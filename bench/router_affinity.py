"""What affinity is worth: a multi-turn agent load through vLLM's router over two replicas with each of
its policies side by side — ``cache_aware`` (the router's default and ours: a request goes where the
longest prefix of its text was sent before, a new one to the least loaded replica), ``consistent_hash``
(on X-Session-ID) and ``round_robin`` — and vLLM's prefix-cache hit rate and mean time to first token of
each.

Each session resends its whole history every turn (a long preamble of its own, then every earlier turn),
as an agent does. The reference model's 256-token context is too short for that, so the replicas serve a
tiny random long-context checkpoint from :mod:`reference.random_checkpoint`. The replicas run 128-token
KV blocks (vLLM's CPU default; only full blocks are cached), their cache fixed (``kv_cache_blocks``,
default 64 blocks) to hold about 60% of all sessions' histories (8 x ~14 blocks): affinity gives each replica about
half the sessions, round robin gives each replica all of them — the case affinity is for (with room for
every session, ``--blocks 96``, the gain is the smaller structural one: round robin misses a session's
first turn on each replica). Policies run in alternating rounds, each with fresh sessions, so none
inherits another's cache. Target: affinity's (``cache_aware``'s) hit rate >= 2x round robin's.

    .venv/bin/python bench/router_affinity.py [--sessions 8] [--turns 6] [--rounds 3] [--blocks 64]
    .venv/bin/python bench/router_affinity.py --blocks 48 64 80 96 128 --plot docs/images/affinity.png
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == REPO / "bench":
    sys.path[0] = str(REPO)  # run as a script: tests.integration (the launchers) from the repository root

from reference.random_checkpoint import WORDS, build  # noqa: E402
from tests.integration.replica_stack import start_router  # noqa: E402
from tests.integration.server_process import ServerProcess, launch_server, wait_ready  # noqa: E402

POLICIES = ("cache_aware", "round_robin", "consistent_hash")


def prefix_counters(replicas: list[ServerProcess]) -> list[tuple[float, float]]:
    """Per replica: prompt tokens looked up in the prefix cache, and those found."""
    out = []
    for r in replicas:
        queries = hits = 0.0
        for line in httpx.get(f"{r.url}/metrics", timeout=10).text.splitlines():
            if line.startswith("vllm:prefix_cache_queries_total"):
                queries += float(line.rsplit(" ", 1)[1])
            elif line.startswith("vllm:prefix_cache_hits_total"):
                hits += float(line.rsplit(" ", 1)[1])
        out.append((queries, hits))
    return out


def session(router: str, sid: str, preamble: str, turns: int, rng: random.Random) -> list[float]:
    """One agent: ``turns`` streamed chat turns, each resending everything; returns each turn's TTFT."""
    messages = [{"role": "system", "content": preamble}]
    ttfts = []
    with httpx.Client(base_url=router, timeout=300, headers={"x-session-id": sid}) as c:
        for _ in range(turns):
            messages.append({"role": "user", "content": " ".join(rng.choice(WORDS) for _ in range(24))})
            body = {"model": "model", "messages": messages, "max_tokens": 24, "temperature": 0, "stream": True}
            t0, first, text = time.perf_counter(), None, []
            with c.stream("POST", "/v1/chat/completions", json=body) as s:
                assert s.status_code == 200, s.read()
                for line in s.iter_lines():
                    if line.startswith("data: {") and '"content":"' in line and '"content":""' not in line:
                        first = first or time.perf_counter()
                        text.append(line)
            ttfts.append((first or time.perf_counter()) - t0)
            messages.append({"role": "assistant", "content": " ".join(rng.choice(WORDS) for _ in range(24))})
    return ttfts


def run_policy(router: str, replicas: list[ServerProcess], args: argparse.Namespace, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    preambles = [f"session {seed}-{i}: " + " ".join(rng.choice(WORDS) for _ in range(args.preamble_words))
                 for i in range(args.sessions)]
    before = prefix_counters(replicas)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.sessions) as pool:
        results = list(pool.map(lambda i: session(router, f"agent-{seed}-{i}", preambles[i], args.turns,
                                                   random.Random(seed * 100 + i)), range(args.sessions)))
    wall = time.perf_counter() - t0
    after = prefix_counters(replicas)
    queried = [a[0] - b[0] for a, b in zip(after, before, strict=True)]
    hits = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
    ttfts = [t for r in results for t in r]
    return {"hit_rate": hits / max(1.0, sum(queried)), "queried": sum(queried),
            "share_a": queried[0] / max(1.0, sum(queried)), "ttft_mean_s": statistics.fmean(ttfts),
            "ttft_p50_s": statistics.median(ttfts), "wall_s": wall}


def measure(model: Path, work: Path, blocks: int, args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    """Two replicas with ``blocks`` KV blocks each, one router per policy, ``args.rounds`` rounds."""
    # 128-token blocks, vLLM's CPU default, as measured (ours is 32 since issue 28: the sizes here are 128s)
    env = {"FORESIGHT_KV_CACHE_BLOCKS": str(blocks), "FORESIGHT_MAX_MODEL_LEN": "4096", "FORESIGHT_BLOCK_SIZE": "128"}
    replicas = [launch_server(model, work, env={**env, "VLLM_CPU_OMP_THREADS_BIND": core}) for core in ("0", "1")]
    routers = []
    try:
        for r in replicas:
            wait_ready(r)
        urls = {}
        for policy in args.policies:
            proc, urls[policy] = start_router([r.url for r in replicas], work, policy)
            routers.append(proc)
        runs: dict[str, list[dict[str, float]]] = {policy: [] for policy in args.policies}
        for rnd in range(args.rounds):
            for k, policy in enumerate(args.policies):
                res = run_policy(urls[policy], replicas, args, seed=100_000 * blocks + 1000 * rnd + k)
                runs[policy].append(res)
                print(f"{blocks} blocks, round {rnd} {policy:16s} hit rate {res['hit_rate']:.3f} of "
                      f"{res['queried']:.0f} tokens (replica a {res['share_a']:.0%}), TTFT mean "
                      f"{res['ttft_mean_s'] * 1000:.0f} ms p50 {res['ttft_p50_s'] * 1000:.0f} ms", flush=True)
        return runs
    finally:
        for proc in routers:
            proc.stop()
        for r in replicas:
            r.stop()


def plot(table: dict[int, dict[str, tuple[float, float]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    blocks = sorted(table)
    for policy in next(iter(table.values())):
        ax.plot(blocks, [table[b][policy][0] for b in blocks], marker="o", label=policy)
    ax.set_xlabel("KV cache blocks per replica (128 tokens each)")
    ax.set_ylabel("prefix-cache hit rate")
    ax.set_ylim(0, 1)
    ax.set_title("8 agents x 6 turns over two replicas, by router policy", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sessions", type=int, default=8)
    p.add_argument("--turns", type=int, default=6)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--preamble-words", type=int, default=1200)
    p.add_argument("--blocks", type=int, nargs="+", default=[64],
                   help="KV cache blocks per replica (128 tokens each on CPU); several: a sweep")
    p.add_argument("--hidden", type=int, default=256, help="the random model's width (prefill cost, so TTFT)")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    p.add_argument("--plot", type=Path, help="write the hit rate by cache size and policy as a PNG")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="affinity-"))
    model = build(work / "model", context=4096, hidden=args.hidden, layers=args.layers, kv_heads=2)
    table: dict[int, dict[str, tuple[float, float]]] = {}
    for blocks in args.blocks:
        runs = measure(model, work, blocks, args)
        table[blocks] = {policy: (statistics.fmean(r["hit_rate"] for r in rs),
                                  statistics.fmean(r["ttft_mean_s"] for r in rs)) for policy, rs in runs.items()}
    print(f"\n{args.sessions} sessions x {args.turns} turns, preamble {args.preamble_words} words, "
          f"{args.rounds} rounds per cache size; hit rate (mean TTFT)")
    print(f"{'blocks':>6s} " + " ".join(f"{policy:>22s}" for policy in args.policies))
    for blocks, row in table.items():
        print(f"{blocks:6d} " + " ".join(f"{row[p][0]:>13.3f} ({row[p][1] * 1000:4.0f} ms)" for p in args.policies))
    if args.plot:
        plot(table, args.plot)
        print(f"plot: {args.plot}")
    if "round_robin" not in args.policies or "cache_aware" not in args.policies:
        return 0
    ratios = {b: row["cache_aware"][0] / max(1e-9, row["round_robin"][0]) for b, row in table.items()}
    print("cache_aware / round robin hit rate: " + ", ".join(f"x{r:.2f} at {b} blocks" for b, r in ratios.items()))
    met = any(r >= 2 for r in ratios.values())
    print(f"target (cache_aware's hit rate >= 2x round robin's): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
