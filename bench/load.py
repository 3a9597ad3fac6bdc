"""Load test of the real server: throughput, p50/p99 latency and errors by status code, in one table.

Three phases against one server (auth on, a key made for the run):
1. vLLM's serving benchmark (``vllm.benchmarks.serve``) on ``/v1/completions``;
2. the same tool on ``/v1/chat/completions`` (streamed, ``openai-chat`` backend);
3. a mixed load of our own (``bench/loadmix.py``) for what no established tool speaks: ``/v1/plan``
   beside chat, streams and completions, with 30% of streaming clients leaving early.

    .venv/bin/python bench/load.py [--clients 64] [--seconds 60] [--num-prompts 400]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def _load(name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


so = _load("serve_overhead")
loadmix = _load("loadmix")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(so.DEFAULT_MODEL))  # type: ignore[attr-defined]
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--num-prompts", type=int, default=400)
    ap.add_argument("--log-dir", default="/tmp")
    args = ap.parse_args()
    model = Path(args.model)
    port = so.free_port()  # type: ignore[attr-defined]
    store = Path(args.log_dir) / f"bench-load-{port}.db"
    env = {"FORESIGHT_STORE_PATH": str(store), "FORESIGHT_LOG_FORMAT": "text", "FORESIGHT_AUTH_ENABLED": "true"}
    made = subprocess.run([sys.executable, "-m", "foresight", "keys", "create", "--name", "bench"], cwd=REPO,
                          env={**__import__("os").environ, **env}, capture_output=True, text=True)
    if made.returncode != 0:
        raise SystemExit(made.stderr)
    key = made.stdout.strip()
    cmd = [sys.executable, "-m", "foresight", "serve", "--model", str(model), "--port", str(port)]
    proc = so.start(cmd, port, "/ready", Path(args.log_dir) / f"bench-load-{port}.log", env)  # type: ignore[attr-defined]
    rows = []
    try:
        auth = ["--header", f"Authorization=Bearer {key}"]
        for label, backend, endpoint in (("completions (vllm bench)", "openai", "/v1/completions"),
                                         ("chat stream (vllm bench)", "openai-chat", "/v1/chat/completions")):
            r = so.run_load(port, model, model.name, args.num_prompts, args.clients, 32,  # type: ignore[attr-defined]
                            backend=backend, endpoint=endpoint, headers=auth)
            failed = int(r.get("failed") or 0)
            rows.append((label, float(r["request_throughput"]), float(r["p50_e2el_ms"]), float(r["p99_e2el_ms"]),
                         f"200:{int(r['completed'])}" + (f" failed:{failed}" if failed else "")))
        mixed = asyncio.run(loadmix.run_load(f"http://127.0.0.1:{port}", model.name,  # type: ignore[attr-defined]
                                             args.clients, args.seconds, key=key))
        codes = " ".join(f"{c}:{n}" for c, n in sorted(mixed.codes.items()))
        if mixed.errors:
            codes += " " + " ".join(f"{e}:{n}" for e, n in mixed.errors.items())
        rows.append((f"mixed incl. plans ({args.clients} clients)", mixed.requests / mixed.seconds,
                     mixed.percentile(50) * 1000, mixed.percentile(99) * 1000, codes))
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json()
    finally:
        so.stop(proc)  # type: ignore[attr-defined]
    print(f"{'phase':<34}{'req/s':>8}{'p50 ms':>10}{'p99 ms':>10}  responses by code")
    for label, rps, p50, p99, codes in rows:
        print(f"{label:<34}{rps:>8.2f}{p50:>10.0f}{p99:>10.0f}  {codes}")
    print(f"mixed phase: {mixed.disconnects} streams left early, {mixed.missing_retry_after} 429s without "
          f"Retry-After, {mixed.server_errors} 5xx; engine unfinished requests afterwards: "
          f"{health['unfinished_requests']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
