"""Metrics overhead: the server's throughput with metrics on vs off, under the same load, in one run.

"On" is the default (our middleware counters, the TCO monitor, vLLM's stats logging and its
``vllm:*`` metrics); "off" is ``metrics_enabled=false`` (none of these).

Throughput of whole separate runs on this shared 2-core machine moves by ±20% between identical
runs (an earlier version of this benchmark measured 0.88–1.35 for the same pair), far more than the
effect asked about. So both servers are started side by side and loaded in short alternating bursts
(on, off, off, on, …; only one is busy at a time, an idle vLLM engine waits without spinning): the
machine's slow drifts hit both alike, and each adjacent pair gives one ratio. Reported: the median
and a bootstrap 90% interval of the per-pair throughput ratios. It drives the two servers over HTTP
only (a bench never imports the server).
Target: overhead <= 2% (throughput ratio >= 0.98).

    .venv/bin/python bench/metrics_overhead.py [--bursts 24] [--burst-requests 48] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import random
import statistics
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("serve_overhead", REPO / "bench" / "serve_overhead.py")
assert _spec and _spec.loader
so = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(so)


async def burst(client: httpx.AsyncClient, url: str, model: str, prompts: list[str], concurrency: int,
                output_len: int) -> float:
    """Requests per second over one burst (every request must succeed)."""
    sem = asyncio.Semaphore(concurrency)

    async def one(prompt: str) -> None:
        async with sem:
            r = await client.post(f"{url}/v1/completions", json={
                "model": model, "prompt": prompt, "max_tokens": output_len, "temperature": 1.0,
                "ignore_eos": True})
            if r.status_code != 200:
                raise SystemExit(f"{url}: HTTP {r.status_code}: {r.text[:200]}")

    t0 = time.perf_counter()
    await asyncio.gather(*(one(p) for p in prompts))
    return len(prompts) / (time.perf_counter() - t0)


def bootstrap(ratios: list[float], rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(rounds))
    return meds[int(0.05 * rounds)], meds[int(0.95 * rounds) - 1]


async def run(args: argparse.Namespace, urls: dict[bool, str], model: Path) -> list[tuple[float, float]]:
    rng = random.Random(0)
    prompts = [f"<information>x={rng.randint(2, 15)} target={rng.randint(20, 99)} steps=6</information>\n"
               for _ in range(args.burst_requests)]
    pairs: list[tuple[float, float]] = []
    # idle connections expire before uvicorn's 5 s keep-alive does: a burst on the other server lasts
    # seconds, and reusing a connection the server is closing fails with a ReadError
    limits = httpx.Limits(keepalive_expiry=1.0)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        for enabled in (True, False):  # warm both
            await burst(client, urls[enabled], model.name, prompts[:16], args.concurrency, args.output_len)
        for i in range(args.bursts):
            order = (True, False) if i % 2 == 0 else (False, True)
            got = {}
            for enabled in order:
                got[enabled] = await burst(client, urls[enabled], model.name, prompts, args.concurrency,
                                           args.output_len)
            pairs.append((got[True], got[False]))
            print(f"pair {i + 1}: on {got[True]:.2f} req/s, off {got[False]:.2f} req/s, "
                  f"ratio {got[True] / got[False]:.3f}", file=sys.stderr, flush=True)
    return pairs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(so.DEFAULT_MODEL))
    ap.add_argument("--bursts", type=int, default=24, help="alternating pairs of bursts")
    ap.add_argument("--burst-requests", type=int, default=48)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--output-len", type=int, default=32)
    ap.add_argument("--log-dir", default="/tmp")
    args = ap.parse_args()
    model = Path(args.model)
    procs, urls = {}, {}
    try:
        for enabled in (True, False):
            port = so.free_port()
            label = "on" if enabled else "off"
            env = {"FORESIGHT_METRICS_ENABLED": "true" if enabled else "false", "FORESIGHT_LOG_FORMAT": "text",
                   "FORESIGHT_STORE_PATH": str(Path(args.log_dir) / f"bench-metrics-{port}.db")}
            cmd = [sys.executable, "-m", "foresight", "serve", "--model", str(model), "--port", str(port)]
            procs[enabled] = so.start(cmd, port, "/ready", Path(args.log_dir) / f"bench-metrics-{label}-{port}.log",
                                      env)
            urls[enabled] = f"http://127.0.0.1:{port}"
        pairs = asyncio.run(run(args, urls, model))
    finally:
        for proc in procs.values():
            so.stop(proc)
    ratios = [on / off for on, off in pairs]
    ratio = statistics.median(ratios)
    lo, hi = bootstrap(ratios)
    rps_on = statistics.median(on for on, _ in pairs)
    print(f"{len(pairs)} alternating burst pairs of {args.burst_requests} requests (concurrency {args.concurrency}, "
          f"{args.output_len} tokens each)")
    print(f"throughput with metrics / without: median {ratio:.3f}, bootstrap 90% interval [{lo:.3f}, {hi:.3f}] "
          f"(overhead {100 * (1 - ratio):+.1f}%); on {rps_on:.2f} req/s")
    verdict = "PASS" if lo >= 0.98 else ("PASS (median)" if ratio >= 0.98 else "MISS")
    print(f"target <= 2% overhead (throughput ratio >= 0.98): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
