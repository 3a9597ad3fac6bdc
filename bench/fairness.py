"""Apps share the engine fairly: a small interactive app's decisions alone, beside a batch flood, beside an
interactive flood — side by side in one run, on one server.

One server (auth on) and three app keys: ``small`` (interactive, 4 agents), ``bulk`` (batch class) and
``flood`` (interactive). Each agent plays held-out NumberReach episodes through ``/v1/plan`` (the model's
defaults), one decision after another; a flooding app runs ``--flood`` agents at once and retries a 429 after its
Retry-After. Three phases of ``--seconds`` each:

1. ``small`` alone;
2. ``small`` while ``bulk`` floods (the batch class: the engine's priority and ``batch_max_share``);
3. ``small`` while ``flood`` floods (one class: fair shares by weight).

Per phase: the small app's p50/p99 decision latency and decisions per second, their ratios to phase 1, and
the flood's decisions per second and 429s. Targets (issue 42): p99 under the batch flood ≤ 1.5× alone; under
the interactive flood ≥ 80% of the decisions per second alone.

    .venv/bin/python bench/fairness.py                       # the reference model
    .venv/bin/python bench/fairness.py --model models/smollm2-135m-instruct \\
        --adapter foresight=models/smollm2-foresight-numberreach --seconds 60
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == REPO / "bench":
    sys.path[0] = str(REPO)  # run as a script: tests.integration (the launchers) from the repository root

from reference import data  # noqa: E402
from reference import numberreach as env  # noqa: E402
from tests.conftest import REFERENCE_MODEL  # noqa: E402
from tests.integration.server_process import ServerProcess, launch_server, wait_ready  # noqa: E402


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    refused: int = 0
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float) -> None:
        with self.lock:
            self.latencies.append(seconds)


def agent(url: str, key: str, body: dict[str, Any], chat: bool, stop: threading.Event, tally: Tally,
          seed: int) -> None:
    """Plays held-out episodes, one plan a decision, until ``stop``; a 429 waits its Retry-After."""
    rng = random.Random(seed)
    pool = data.visited_states(rng, heldout=True)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=600, headers=headers) as client:
        state = next(pool)
        while not stop.is_set():
            prompt = data.prompt_for(state)
            observation = {"messages": [{"role": "user", "content": prompt.strip()}]} if chat else {"prompt": prompt}
            t0 = time.perf_counter()
            try:
                r = client.post("/v1/plan", json={**body, **observation, "seed": rng.randrange(2**31)})
            except httpx.HTTPError:
                tally.errors += 1
                continue
            if r.status_code == 429:
                tally.refused += 1
                time.sleep(float(r.headers.get("retry-after", "1")) * rng.uniform(0.5, 1.0))
                continue
            if r.status_code != 200:
                tally.errors += 1
                continue
            if stop.is_set():
                break  # a decision that ended after the phase does not count in it
            tally.add(time.perf_counter() - t0)
            action = (r.json().get("action") or {}).get("arguments")
            op = data.op_of_action(action) if action else None
            state = env.step(state, op, rng).state if op else next(pool)
            if state.done:
                state = next(pool)


def phase(url: str, keys: dict[str, str], body: dict[str, Any], chat: bool, seconds: float, small: int,
          flood: int, flooder: str | None, seed: int) -> tuple[Tally, Tally]:
    stop = threading.Event()
    mine, theirs = Tally(), Tally()
    threads = [threading.Thread(target=agent, args=(url, keys["small"], body, chat, stop, mine, seed + i))
               for i in range(small)]
    if flooder is not None:
        threads += [threading.Thread(target=agent, args=(url, keys[flooder], body, chat, stop, theirs,
                                                         seed + 1000 + i)) for i in range(flood)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return mine, theirs


def row(name: str, seconds: float, mine: Tally, theirs: Tally, alone: Tally | None) -> str:
    lat = sorted(mine.latencies) or [float("nan")]
    p50, p99 = statistics.median(lat), lat[int(0.99 * (len(lat) - 1))]
    rate = len(mine.latencies) / seconds
    if alone is None:
        ratios = "| 1.00 | 1.00 | 1.00"
    else:
        base = sorted(alone.latencies)
        b50, b99, brate = statistics.median(base), base[int(0.99 * (len(base) - 1))], len(base) / seconds
        ratios = f"| {p50 / b50:.2f} | {p99 / b99:.2f} | {rate / brate:.2f}"
    errors = mine.errors + theirs.errors
    return (f"| {name} | {len(mine.latencies)} | {p50 * 1000:.0f} | {p99 * 1000:.0f} | {rate:.2f} {ratios} | "
            f"{len(theirs.latencies) / seconds:.2f} | {theirs.refused} | {mine.refused} | {errors} |")


def make_key(server: ServerProcess, name: str, *extra: str) -> str:
    made = server.cli("keys", "create", "--name", name, *extra)
    if made.returncode != 0:
        raise RuntimeError(f"keys create {name}: {made.stderr}")
    return made.stdout.strip()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=REFERENCE_MODEL)
    p.add_argument("--adapter", metavar="NAME=PATH", help="serve this adapter on --model and plan with it")
    p.add_argument("--seconds", type=float, default=40.0, help="each phase's length")
    p.add_argument("--small", type=int, default=4, help="the small app's agents")
    p.add_argument("--flood", type=int, default=64, help="a flooding app's agents")
    p.add_argument("--max-num-seqs", type=int, default=16, help="the engine's running sequences")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    chat = args.model.resolve() != REFERENCE_MODEL.resolve()
    extra = ["--adapter", args.adapter] if args.adapter else []
    env_vars = {"FORESIGHT_AUTH_ENABLED": "true", "FORESIGHT_MAX_NUM_SEQS": str(args.max_num_seqs),
                "FORESIGHT_MAX_QUEUE": str(4 * args.max_num_seqs)}
    if chat:
        env_vars |= {"FORESIGHT_DTYPE": "bfloat16", "FORESIGHT_MAX_MODEL_LEN": "2048"}
    work = Path(tempfile.mkdtemp(prefix="fairness-"))
    server = wait_ready(launch_server(args.model, work, *extra, env=env_vars))
    try:
        keys = {"small": make_key(server, "small"), "bulk": make_key(server, "bulk", "--priority-class", "batch"),
                "flood": make_key(server, "flood")}
        body: dict[str, Any] = {"max_tokens_per_turn": 128}
        if args.adapter:
            body["model"] = args.adapter.partition("=")[0]
        print(f"{args.model.name}{' + ' + args.adapter if args.adapter else ''}: max_num_seqs {args.max_num_seqs}, "
              f"small app {args.small} agents, floods {args.flood} agents, {args.seconds:.0f} s a phase", flush=True)
        alone, none = phase(server.url, keys, body, chat, args.seconds, args.small, 0, None, args.seed)
        batch = phase(server.url, keys, body, chat, args.seconds, args.small, args.flood, "bulk", args.seed + 1)
        inter = phase(server.url, keys, body, chat, args.seconds, args.small, args.flood, "flood", args.seed + 2)
    finally:
        server.stop()
    print("| phase | small: decisions | p50 ms | p99 ms | decisions/s | p50 × alone | p99 × alone "
          "| decisions/s × alone | flood decisions/s | flood 429s | small 429s | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(row("small alone", args.seconds, alone, none, None))
    print(row(f"+ batch flood ({args.flood})", args.seconds, *batch, alone))
    print(row(f"+ interactive flood ({args.flood})", args.seconds, *inter, alone))
    return 0


if __name__ == "__main__":
    sys.exit(main())
