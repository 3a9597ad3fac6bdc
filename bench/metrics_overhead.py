"""Metrics overhead: the server's throughput with metrics on vs off, under the same load, in one run.

"On" is the default (our middleware counters, the TCO monitor, vLLM's stats logging and its
``vllm:*`` metrics); "off" is ``metrics_enabled=false`` (none of these). Each configuration is
started fresh and loaded with vLLM's serving benchmark (random prompts, fixed output length);
the pair is measured ``--rounds`` times in alternating order and the median ratio is reported
(this machine is shared and noisy). Target: overhead <= 2% (throughput ratio >= 0.98).

    .venv/bin/python bench/metrics_overhead.py [--num-prompts 200] [--concurrency 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("serve_overhead", REPO / "bench" / "serve_overhead.py")
assert _spec and _spec.loader
so = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(so)


def measure(model: Path, enabled: bool, args: argparse.Namespace) -> float:
    port = so.free_port()
    cmd = [sys.executable, "-m", "server", "serve", "--model", str(model), "--port", str(port)]
    label = "on" if enabled else "off"
    env = {"FORESIGHT_METRICS_ENABLED": "true" if enabled else "false", "FORESIGHT_LOG_FORMAT": "text",
           "FORESIGHT_STORE_PATH": str(Path(args.log_dir) / f"bench-metrics-{port}.db")}
    proc = so.start(cmd, port, "/ready", Path(args.log_dir) / f"bench-metrics-{label}-{port}.log", env)
    try:
        result = so.run_load(port, model, model.name, args.num_prompts, args.concurrency, args.output_len)
    finally:
        so.stop(proc)
    rps = float(result["request_throughput"])
    if int(result.get("completed") or 0) < args.num_prompts:
        raise SystemExit(f"[metrics {label}] only {result.get('completed')} of {args.num_prompts} requests "
                         f"succeeded; see {args.log_dir}")
    print(f"[metrics {label}] {rps:.2f} requests/s", file=sys.stderr)
    return rps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(so.DEFAULT_MODEL))
    ap.add_argument("--num-prompts", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--output-len", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--log-dir", default="/tmp")
    args = ap.parse_args()
    model = Path(args.model)
    ratios = []
    for r in range(args.rounds):
        order = (True, False) if r % 2 == 0 else (False, True)
        got = {enabled: measure(model, enabled, args) for enabled in order}
        ratios.append(got[True] / got[False])
        print(f"round {r + 1}: on {got[True]:.2f} req/s, off {got[False]:.2f} req/s, ratio {ratios[-1]:.3f}")
    ratio = statistics.median(ratios)
    print(f"throughput with metrics / without (median of {len(ratios)}): {ratio:.3f} "
          f"(overhead {100 * (1 - ratio):+.1f}%; target <= 2%): {'PASS' if ratio >= 0.98 else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
