"""What trust between apps costs: throughput with keys on (scope checks, per-key usage accounting, rate
limits) against keys off, under the same mixed load, in one run, over HTTP only (a bench never imports
the server).

Both servers run side by side and are loaded in short alternating bursts (as bench/metrics_overhead.py
does: the machine's drifts hit both alike); each burst is completions and greedy plans, so every plan
writes its audit record on both servers (with keys off it is owned by nobody). Reported: the median and a
bootstrap 90% interval of the per-pair throughput ratios. Target: overhead <= 2% (throughput ratio >= 0.98).

    .venv/bin/python bench/trust_overhead.py [--bursts 16] [--burst-requests 40] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == REPO / "bench":
    sys.path.pop(0)  # run as a script: nothing of bench/ may stand in for a package the server imports
_spec = importlib.util.spec_from_file_location("metrics_overhead", REPO / "bench" / "metrics_overhead.py")
assert _spec and _spec.loader
mo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mo)
so = mo.so
PROMPT = "<information>x={x} target=40 steps=6</information>\n"


async def burst(client: httpx.AsyncClient, url: str, headers: dict[str, str], model: str, n: int,
                concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            if i % 5 == 4:  # one plan in five requests
                r = await client.post(f"{url}/v1/plan", headers=headers, json={
                    "prompt": PROMPT.format(x=2 + i % 13), "algorithm": "greedy", "temperature": 0})
            else:
                r = await client.post(f"{url}/v1/completions", headers=headers, json={
                    "model": model, "prompt": PROMPT.format(x=2 + i % 13), "max_tokens": 32, "temperature": 1.0,
                    "ignore_eos": True})
            if r.status_code != 200:
                raise SystemExit(f"{url}: HTTP {r.status_code}: {r.text[:200]}")

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - t0)


async def run(args: argparse.Namespace, urls: dict[bool, str], headers: dict[bool, dict[str, str]],
              model: str) -> list[tuple[float, float]]:
    pairs = []
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(keepalive_expiry=1.0)) as client:
        for on in (True, False):
            await burst(client, urls[on], headers[on], model, 10, args.concurrency)
        for i in range(args.bursts):
            got = {}
            for on in ((True, False) if i % 2 == 0 else (False, True)):
                got[on] = await burst(client, urls[on], headers[on], model, args.burst_requests, args.concurrency)
            pairs.append((got[True], got[False]))
            print(f"pair {i + 1}: keys on {got[True]:.2f} req/s, off {got[False]:.2f}, ratio "
                  f"{got[True] / got[False]:.3f}", file=sys.stderr, flush=True)
    return pairs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(so.DEFAULT_MODEL))
    ap.add_argument("--bursts", type=int, default=16, help="alternating pairs of bursts")
    ap.add_argument("--burst-requests", type=int, default=40)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--log-dir", default="/tmp")
    args = ap.parse_args()
    model = Path(args.model)
    procs, urls, headers = {}, {}, {}
    try:
        for on in (True, False):
            port = so.free_port()
            env = {"FORESIGHT_AUTH_ENABLED": "true" if on else "false", "FORESIGHT_LOG_FORMAT": "text",
                   "FORESIGHT_STORE_PATH": str(Path(args.log_dir) / f"bench-trust-{port}.db")}
            headers[on] = {}
            if on:
                made = subprocess.run([sys.executable, "-m", "foresight", "keys", "create", "--name", "bench"],
                                      cwd=REPO, env={**__import__("os").environ, **env}, capture_output=True,
                                      text=True, check=True)
                headers[on] = {"authorization": f"Bearer {made.stdout.strip()}"}
            cmd = [sys.executable, "-m", "foresight", "serve", "--model", str(model), "--port", str(port)]
            procs[on] = so.start(cmd, port, "/ready", Path(args.log_dir) / f"bench-trust-{port}.log", env)
            urls[on] = f"http://127.0.0.1:{port}"
        pairs = asyncio.run(run(args, urls, headers, model.name))
    finally:
        for proc in procs.values():
            so.stop(proc)
    ratios = [on / off for on, off in pairs]
    ratio, (lo, hi) = statistics.median(ratios), mo.bootstrap(ratios)
    rps = statistics.median(on for on, _ in pairs)
    print(f"{len(pairs)} alternating burst pairs of {args.burst_requests} requests (one plan in five, "
          f"concurrency {args.concurrency})")
    print(f"throughput with keys / without: median {ratio:.3f}, bootstrap 90% interval [{lo:.3f}, {hi:.3f}] "
          f"(overhead {100 * (1 - ratio):+.1f}%); keys on {rps:.2f} req/s")
    verdict = "PASS" if lo >= 0.98 else ("PASS (median)" if ratio >= 0.98 else "MISS")
    print(f"target <= 2% overhead (throughput ratio >= 0.98): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
