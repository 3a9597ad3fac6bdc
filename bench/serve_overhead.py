"""Serving overhead: Foresight Serve against vLLM's own OpenAI server, side by side in one run.

The same load (vLLM's serving benchmark, ``vllm.benchmarks.serve``: random prompts,
fixed output length with ignore_eos, fixed concurrency) is sent to our server and to
``python -m vllm.entrypoints.openai.api_server`` started from the same environment with the
same engine settings, both up side by side, in ``--rounds`` rounds of A B B A (each server
runs once before and once after the other: order matters on this machine) so that the machine's
drift hits both alike. Prints the medians of requests/s, p50 and p99
end-to-end latency of each, their ratios, and the per-round throughput ratios with their spread.

On our server, in the same run, the same chat load three ways (:mod:`bench.api_variants`): plain chat,
chat with ``tools`` declared, and ``/v1/responses`` — with the same prompt token ids (the reference
model's template renders no tools block), in rounds of alternating order. Targets: tools >= 0.97x chat,
responses >= 0.97x chat. It also reports what a tools block costs in prompt tokens on a template that
renders one (the Qwen2.5-style template of docs/templates/).

    .venv/bin/python bench/serve_overhead.py [--rounds 3] [--num-prompts 200] [--concurrency 8] [--no-variants]

A real pretrained model (``foresight models add smollm2-135m-instruct``), at the settings of its figures in
docs/benchmarks.md:

    .venv/bin/python bench/serve_overhead.py --model models/smollm2-135m-instruct --dtype bfloat16 \
        --max-model-len 2048 --block-size 32 --input-len 128 --output-len 64 --num-prompts 96 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
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
             input_len: int = 24, backend: str = "openai", endpoint: str = "/v1/completions",
             headers: list[str] | None = None) -> dict[str, Any]:
    from vllm.benchmarks.serve import add_cli_args
    from vllm.benchmarks.serve import main as bench_main
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser()
    add_cli_args(parser)
    args = parser.parse_args([
        "--backend", backend, "--base-url", f"http://127.0.0.1:{port}", "--endpoint", endpoint,
        "--model", name, "--tokenizer", str(model), "--dataset-name", "random",
        "--random-input-len", str(input_len), "--random-output-len", str(output_len), "--num-prompts", str(num_prompts),
        "--max-concurrency", str(concurrency), "--ignore-eos", "--percentile-metrics", "e2el,ttft",
        "--metric-percentiles", "50,99", "--seed", "0", "--disable-tqdm", *(headers or []),
    ])
    return dict(bench_main(args))


def start_both(a: argparse.Namespace, model: Path) -> tuple[dict[str, subprocess.Popen[bytes]], dict[str, int]]:
    """Our server and vLLM's own, up side by side (an idle engine waits), with the same engine settings."""
    # the same dtype on both sides: ours resolves `auto` itself (float32 for this checkpoint on CPUs
    # without native bfloat16), vLLM's own server would pick bfloat16
    common = ["--max-num-seqs", "64", "--seed", "0", "--enforce-eager", "--max-model-len", str(a.max_model_len),
              "--dtype", a.dtype]
    if a.same_prefill:
        # our engine prefills whole prompts on CPU (engine/vllm.py: vllm-cpu 0.32 dies when a seeded request's
        # prefill is split); vLLM's own server chunks them unless told not to
        common.append("--no-enable-chunked-prefill")
    ours = {"FORESIGHT_DTYPE": a.dtype, "FORESIGHT_MAX_MODEL_LEN": str(a.max_model_len)}
    if a.block_size:
        common += ["--block-size", str(a.block_size)]
        ours["FORESIGHT_BLOCK_SIZE"] = str(a.block_size)
    commands = {
        "foresight": ([sys.executable, "-m", "foresight", "serve", "--model", str(model)], "/ready", []),
        "vllm": ([sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model)], "/health",
                 ["--served-model-name", model.name, *common]),
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    ports: dict[str, int] = {}
    try:
        for label, (cmd, ready, extra) in commands.items():
            ports[label] = free_port()
            print(f"[{label}] starting on port {ports[label]}", file=sys.stderr)
            procs[label] = start([*cmd, "--port", str(ports[label]), *extra], ports[label], ready,
                                 Path(a.log_dir) / f"bench-{label}-{ports[label]}.log", ours)
    except BaseException:
        for proc in procs.values():
            stop(proc)
        raise
    return procs, ports


def one_round(ports: dict[str, int], model: Path, a: argparse.Namespace, first: str) -> dict[str, dict[str, Any]]:
    """A B B A: each server runs the load twice, once before the other and once after it (measured here: the
    second run of a pair ran ~5% faster whichever server it was, so A B rounds favour whoever goes second);
    a round's figures are the mean of its two runs (its throughput: requests over both runs' durations)."""
    second = "vllm" if first == "foresight" else "foresight"
    runs: dict[str, list[dict[str, Any]]] = {first: [], second: []}
    with contextlib.redirect_stdout(sys.stderr):  # vLLM's benchmark prints its own report
        for label in (first, second, second, first):
            runs[label].append(run_load(ports[label], model, model.name, a.num_prompts, a.concurrency, a.output_len,
                                        a.input_len))
    out: dict[str, dict[str, Any]] = {}
    for label, (r1, r2) in runs.items():
        out[label] = {k: (float(r1[k]) + float(r2[k])) / 2 for k in ("p50_e2el_ms", "p99_e2el_ms", "p50_ttft_ms")}
        r1_s, r2_s = 1 / float(r1["request_throughput"]), 1 / float(r2["request_throughput"])  # s per request
        out[label]["request_throughput"] = 2 / (r1_s + r2_s)
        out[label]["failed"] = int(r1.get("failed", 0)) + int(r2.get("failed", 0))
        out[label]["errors"] = sorted({str(e) for r in (r1, r2) for e in r.get("errors") or [] if e})[:5]
    return out


def report(rounds: list[dict[str, dict[str, Any]]], a: argparse.Namespace) -> tuple[float, list[float], float]:
    """The medians side by side, and the per-round throughput ratios with their spread."""
    print(f"{Path(a.model).name}, {a.dtype}: {a.rounds} rounds (A B B A) of {a.num_prompts} requests (concurrency "
          f"{a.concurrency}, {a.input_len} prompt / {a.output_len} output tokens, context {a.max_model_len}, "
          f"KV block {a.block_size or 'default'}), medians:")
    rows = [("requests/s", "request_throughput"), ("p50 e2e latency ms", "p50_e2el_ms"),
            ("p99 e2e latency ms", "p99_e2el_ms"), ("p50 TTFT ms", "p50_ttft_ms")]
    print(f"{'metric':<22}{'foresight':>12}{'vllm serve':>12}{'ratio':>9}")
    for label, key in rows:
        o = statistics.median(float(r["foresight"][key]) for r in rounds)
        t = statistics.median(float(r["vllm"][key]) for r in rounds)
        print(f"{label:<22}{o:>12.2f}{t:>12.2f}{(o / t if t else float('nan')):>9.3f}")
    ratios = [float(r["foresight"]["request_throughput"]) / float(r["vllm"]["request_throughput"]) for r in rounds]
    thr = statistics.median(ratios)
    p50 = statistics.median(float(r["foresight"]["p50_e2el_ms"]) / float(r["vllm"]["p50_e2el_ms"]) for r in rounds)
    print(f"throughput ratio per round: {', '.join(f'{x:.3f}' for x in ratios)}; median {thr:.3f}, "
          f"spread {min(ratios):.3f}-{max(ratios):.3f}")
    print(f"p50 latency ratio (median of rounds) {p50:.3f}")
    for label in ("foresight", "vllm"):
        failed = sum(int(r[label].get("failed", 0)) for r in rounds)
        errors = sorted({e for r in rounds for e in r[label].get("errors", [])})
        print(f"failed requests, {label}: {failed} of {2 * len(rounds) * a.num_prompts}"
              + (f" ({'; '.join(errors)[:300]})" if errors else ""))
    return thr, ratios, p50


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--num-prompts", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--output-len", type=int, default=32)
    ap.add_argument("--input-len", type=int, default=24, help="random prompt tokens per request (default 24)")
    ap.add_argument("--max-model-len", type=int, default=256, help="context length on both servers (default 256)")
    ap.add_argument("--block-size", type=int, help="KV block size on both servers (default: vLLM's)")
    ap.add_argument("--same-prefill", action="store_true",
                    help="vLLM's server prefills whole prompts too, as ours does on CPU (default: its chunked prefill)")
    ap.add_argument("--log-dir", default="/tmp")
    ap.add_argument("--dtype", default="float32", help="dtype for both servers (default float32)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of A B B A; their median and spread")
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    ap.add_argument("--no-variants", action="store_true", help="skip the chat / tools / responses variants")
    a = ap.parse_args()
    model = Path(a.model)
    rounds: list[dict[str, dict[str, Any]]] = []
    variants: dict[str, Any] = {}
    procs, ports = start_both(a, model)
    try:
        for i in range(a.rounds):
            got = one_round(ports, model, a, first="foresight" if i % 2 == 0 else "vllm")
            rounds.append(got)
            print(f"round {i + 1}: foresight {float(got['foresight']['request_throughput']):.2f} req/s, vllm serve "
                  f"{float(got['vllm']['request_throughput']):.2f} req/s", file=sys.stderr, flush=True)
        if not a.no_variants:
            variants = api_variants.run(f"http://127.0.0.1:{ports['foresight']}", model.name, a.num_prompts,
                                        a.concurrency, a.output_len)
    finally:
        for proc in procs.values():
            stop(proc)
    thr, ratios, p50 = report(rounds, a)
    if not a.no_variants:
        api_variants.report(variants)
    if a.json:
        print(json.dumps({"foresight": rounds[-1]["foresight"], "vllm": rounds[-1]["vllm"], "throughput_ratio": thr,
                          "ratios": ratios, "p50_ratio": p50, "variants": None if a.no_variants else variants},
                         default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
