"""Serving overhead: Foresight Serve against vLLM's own OpenAI server, side by side in one run.

The same load (vLLM's serving benchmark, ``vllm.benchmarks.serve``: random prompts,
fixed output length with ignore_eos, fixed concurrency) is sent to our server and
then to ``python -m vllm.entrypoints.openai.api_server`` started from the same
environment with the same engine settings. Prints requests/s, p50 and p99
end-to-end latency of each, and the ratios (targets: throughput >= 0.95x,
p50 <= 1.05x).

On our server, in the same run, the same chat load three ways (:mod:`bench.api_variants`): plain chat,
chat with ``tools`` declared, and ``/v1/responses`` — with the same prompt token ids (the reference
model's template renders no tools block), in rounds of alternating order. Targets: tools >= 0.97x chat,
responses >= 0.97x chat. It also reports what a tools block costs in prompt tokens on a template that
renders one (the Qwen2.5-style template of docs/templates/).

    .venv/bin/python bench/serve_overhead.py [--num-prompts 200] [--concurrency 8] [--no-variants]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "models" / "foresight-numberreach"


def _load(name: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


api_variants = _load("api_variants")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cmd: list[str], port: int, ready_path: str, log: Path,
          extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    # a loopback benchmark without keys (vLLM's own server has none either); bench/load.py runs with auth
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "FORESIGHT_LOG_LEVEL": "warning",
           "FORESIGHT_AUTH_ENABLED": "false", **(extra_env or {})}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited during start-up; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"server not ready in 300 s; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_load(port: int, model: Path, name: str, num_prompts: int, concurrency: int, output_len: int,
             backend: str = "openai", endpoint: str = "/v1/completions",
             headers: list[str] | None = None) -> dict[str, Any]:
    from vllm.benchmarks.serve import add_cli_args
    from vllm.benchmarks.serve import main as bench_main
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser()
    add_cli_args(parser)
    args = parser.parse_args([
        "--backend", backend, "--base-url", f"http://127.0.0.1:{port}", "--endpoint", endpoint,
        "--model", name, "--tokenizer", str(model), "--dataset-name", "random",
        "--random-input-len", "24", "--random-output-len", str(output_len), "--num-prompts", str(num_prompts),
        "--max-concurrency", str(concurrency), "--ignore-eos", "--percentile-metrics", "e2el,ttft",
        "--metric-percentiles", "50,99", "--seed", "0", "--disable-tqdm", *(headers or []),
    ])
    return dict(bench_main(args))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--num-prompts", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--output-len", type=int, default=32)
    ap.add_argument("--log-dir", default="/tmp")
    ap.add_argument("--dtype", default="float32", help="dtype for both servers (default float32)")
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    ap.add_argument("--no-variants", action="store_true", help="skip the chat / tools / responses variants")
    a = ap.parse_args()
    model = Path(a.model)
    name = model.name
    # the same dtype on both sides: ours resolves `auto` itself (float32 for this checkpoint on CPUs
    # without native bfloat16), vLLM's own server would pick bfloat16
    common = ["--max-num-seqs", "64", "--seed", "0", "--enforce-eager", "--max-model-len", "256", "--dtype", a.dtype]
    results: dict[str, dict[str, Any]] = {}
    variants: dict[str, Any] = {}
    for label in ("foresight", "vllm"):
        port = free_port()
        if label == "foresight":
            cmd = [sys.executable, "-m", "foresight", "serve", "--model", str(model), "--port", str(port)]
            ready = "/ready"
        else:
            cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
                   "--port", str(port), "--served-model-name", name, *common]
            ready = "/health"
        print(f"[{label}] starting on port {port}", file=sys.stderr)
        proc = start(cmd, port, ready, Path(a.log_dir) / f"bench-{label}-{port}.log", {"FORESIGHT_DTYPE": a.dtype})
        try:
            results[label] = run_load(port, model, name, a.num_prompts, a.concurrency, a.output_len)
            if label == "foresight" and not a.no_variants:
                variants = api_variants.run(f"http://127.0.0.1:{port}", name, a.num_prompts, a.concurrency,
                                            a.output_len)
        finally:
            stop(proc)
    ours, theirs = results["foresight"], results["vllm"]
    rows = [("requests/s", "request_throughput"), ("p50 e2e latency ms", "p50_e2el_ms"),
            ("p99 e2e latency ms", "p99_e2el_ms"), ("p50 TTFT ms", "p50_ttft_ms")]
    print(f"{'metric':<22}{'foresight':>12}{'vllm serve':>12}{'ratio':>9}")
    for label, key in rows:
        o, t = float(ours[key]), float(theirs[key])
        print(f"{label:<22}{o:>12.2f}{t:>12.2f}{(o / t if t else float('nan')):>9.3f}")
    thr = float(ours["request_throughput"]) / float(theirs["request_throughput"])
    p50 = float(ours["p50_e2el_ms"]) / float(theirs["p50_e2el_ms"])
    print(f"throughput ratio {thr:.3f} (target >= 0.95): {'PASS' if thr >= 0.95 else 'MISS'}")
    print(f"p50 latency ratio {p50:.3f} (target <= 1.05): {'PASS' if p50 <= 1.05 else 'MISS'}")
    if not a.no_variants:
        api_variants.report(variants)
    if a.json:
        print(json.dumps({"foresight": ours, "vllm": theirs, "throughput_ratio": thr, "p50_ratio": p50,
                          "variants": None if a.no_variants else variants}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
