"""What the edge costs: the same load straight to one replica and through vLLM's router (and through the
whole edge, HAProxy then the router, as clients reach it) to that same replica, in alternating bursts in
one run. Chat completions take the router's path; plans take HAProxy's straight path (vllm-router cannot
carry them: docs/scaling.md). Reported per path: throughput and p50 latency against direct, the median of
per-round ratios, with a bootstrap 90% interval. Target: throughput ratio >= 0.95 and p50 latency ratio
<= 1.10. The engine is pinned to one core; the router, HAProxy and this load generator share the other.

    .venv/bin/python bench/router_overhead.py [--rounds 16] [--burst 48] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import importlib.util
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

_spec = importlib.util.spec_from_file_location("metrics_overhead", REPO / "bench" / "metrics_overhead.py")
assert _spec and _spec.loader
mo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mo)  # its bootstrap interval of per-pair ratios

from tests.conftest import REFERENCE_MODEL  # noqa: E402
from tests.integration.replica_stack import start_edge, start_router  # noqa: E402
from tests.integration.server_process import launch_server, wait_ready  # noqa: E402

PROMPT = "x={x} target=40 steps=6"
CHAT = "/v1/chat/completions"


def burst(base: str, path: str, n: int, concurrency: int, max_tokens: int) -> tuple[float, list[float]]:
    """``n`` requests at ``concurrency``: (requests per second, each latency)."""
    def one(i: int) -> float:
        if path == CHAT:
            body = {"model": "foresight-numberreach", "max_tokens": max_tokens, "temperature": 0,
                    "messages": [{"role": "user", "content": PROMPT.format(x=3 + i % 9)}]}
        else:
            body = {"prompt": f"<information>{PROMPT.format(x=3 + i % 9)}</information>\n", "algorithm": "greedy"}
        t0 = time.perf_counter()
        r = client.post(f"{base}{path}", json=body, headers={"x-session-id": f"s{i % 4}"})
        assert r.status_code == 200, r.text
        return time.perf_counter() - t0

    with httpx.Client(timeout=120) as client, ThreadPoolExecutor(concurrency) as pool:
        t0 = time.perf_counter()
        lat = list(pool.map(one, range(n)))
        return n / (time.perf_counter() - t0), lat


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=16)
    p.add_argument("--burst", type=int, default=48)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--max-tokens", type=int, default=32)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="router-overhead-"))
    replica = launch_server(REFERENCE_MODEL, work, env={"VLLM_CPU_OMP_THREADS_BIND": "0"})
    procs = []
    try:
        wait_ready(replica)
        router_proc, router = start_router([replica.url], work, "consistent_hash")
        procs.append(router_proc)
        edge_proc, edge = start_edge(router, [replica.url, replica.url], work)
        procs.append(edge_proc)
        paths = {"chat direct": (replica.url, CHAT), "chat router": (router, CHAT), "chat edge": (edge, CHAT),
                 "plan direct": (replica.url, "/v1/plan"), "plan edge": (edge, "/v1/plan")}
        for base, path in paths.values():  # warm every path once
            burst(base, path, 4, 2, args.max_tokens)
        tput: dict[str, list[float]] = {k: [] for k in paths}
        lat: dict[str, list[float]] = {k: [] for k in paths}
        names = list(paths)
        for rnd in range(args.rounds):
            for name in names[rnd % len(names):] + names[:rnd % len(names)]:  # rotate who goes first
                rps, ls = burst(*paths[name], args.burst, args.concurrency, args.max_tokens)
                tput[name].append(rps)
                lat[name].append(statistics.median(ls))
            print(f"round {rnd}: " + ", ".join(f"{k} {tput[k][-1]:.1f}/s" for k in names), flush=True)
        print(f"\n{args.rounds} rounds x {args.burst} requests at concurrency {args.concurrency}, "
              f"max_tokens {args.max_tokens}; ratios are medians of per-round ratios to direct")
        print(f"{'path':14s} {'req/s':>7s} {'p50 ms':>7s} {'tput ratio':>11s} {'90% interval':>14s} {'p50 ratio':>10s}")
        ok = True
        for name in names:
            base = "chat direct" if name.startswith("chat") else "plan direct"
            pairs = [a / b for a, b in zip(tput[name], tput[base], strict=True)]
            tr = statistics.median(pairs)
            lo, hi = mo.bootstrap(pairs)
            lr = statistics.median(a / b for a, b in zip(lat[name], lat[base], strict=True))
            print(f"{name:14s} {statistics.median(tput[name]):7.1f} {statistics.median(lat[name]) * 1000:7.0f} "
                  f"{tr:11.3f} {f'[{lo:.3f}, {hi:.3f}]':>14s} {lr:10.3f}")
            if name != base:
                ok = ok and tr >= 0.95 and lr <= 1.10
        print(f"\ntarget (throughput ratio >= 0.95, p50 ratio <= 1.10 on every path): {'met' if ok else 'NOT met'}")
        return 0 if ok else 1
    finally:
        for proc in procs:
            proc.stop()
        replica.stop()


if __name__ == "__main__":
    sys.exit(main())
