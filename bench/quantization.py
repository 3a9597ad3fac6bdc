"""Quantization benchmark on the reference model: original vs W4A16 (group 128 and 64), one table.

For each variant: weights on disk (ratio to the original file, and the quantized layers against
the same layers in 16 bits), logit KL on held-out traces, and — through vLLM on this machine, the
same held-out states, starts and sampling seeds for every model — format validity, confidence
Brier, rollout accuracy, task success (greedy and best-of-N), and generation tokens/s (64 concurrent
turns). Then the fit estimator's predicted KV capacity against the KV cache vLLM allocated.

The reference model's hidden width (192) is not a multiple of 128, so group 128 can only quantize
``down_proj`` (input 512): that variant runs with ``--skip-indivisible`` and says so.

Targets (issue 6): quantized layers ≥ 3.5× smaller; success within 2 points and Brier within 0.02
of the original; predicted KV capacity within 10% of vLLM's.

    .venv/bin/python bench/quantization.py [--episodes 200] [--states 300] [--out runs/bench-quantize]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from quantize import runner
from quantize.plan import make_plan
from quantize.sizes import checkpoint_size
from quantize.traces import reference_traces
from quantize.vram import GIB, Architecture, predicted_kv_tokens

REPO = Path(__file__).resolve().parents[1]

MODEL = REPO / "models" / "foresight-numberreach"
KV_SPACE_GIB = 1


async def measure(path: Path, dtype: str, args: argparse.Namespace) -> dict[str, Any]:
    from engine import open_engine
    from engine.base import GenerationRequest
    from reference import data
    from reference.evaluate import evaluate

    async with open_engine(path, dtype=dtype, cpu_kvcache_space_gib=KV_SPACE_GIB, log_stats=False) as engine:
        result = await evaluate(engine, episodes=args.episodes, states=args.states, seed=args.seed,
                                best_of_n=args.best_of, policies=("model_greedy", "model_best_of_n"), show=True)
        prompts = [data.prompt_for(t) for t in _states(64, args.seed)]
        counts = [0] * len(prompts)

        async def one(i: int, prompt: str) -> None:
            req = GenerationRequest(engine.encode(prompt), max_tokens=96, temperature=1.0, seed=i, ignore_eos=True)
            async for chunk in engine.generate(req, f"tps-{i}"):
                counts[i] += sum(d.num_tokens for d in chunk.deltas)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))
        elapsed = time.perf_counter() - t0
        info = engine.info
        return {"eval": result.to_dict(), "dtype": info.dtype, "kv_cache_tokens": info.kv_cache_tokens,
                "tokens_per_s": sum(counts) / elapsed if elapsed else 0.0, "generated": sum(counts)}


def _states(n: int, seed: int) -> list[Any]:
    import random

    from reference import data

    it = data.visited_states(random.Random(seed + 99), heldout=True)
    return [next(it) for _ in range(n)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--states", type=int, default=300)
    ap.add_argument("--best-of", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "runs" / "bench-quantize"))
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    out = Path(args.out)
    python = runner.find_python()
    calibration = reference_traces(256, args.seed, heldout=False)
    heldout = reference_traces(64, args.seed + 1, heldout=True)

    variants: list[tuple[str, Path, dict[str, Any] | None, tuple[str, ...]]] = [("original", MODEL, None, ())]
    for group in (128, 64):
        plan = make_plan(str(MODEL), str(out / f"w4a16-g{group}"), "W4A16", group, skip_indivisible=(group == 128))
        print(f"quantizing W4A16 g{group} ...", file=sys.stderr, flush=True)
        worker = runner.run_worker(plan, calibration, heldout, python, force=True)
        variants.append((f"W4A16 g{group}", Path(plan.out), worker, plan.left_16bit))

    original_size = checkpoint_size(MODEL)
    arch = Architecture.from_config(json.loads((MODEL / "config.json").read_text()))
    rows = []
    for name, path, worker, left in variants:
        print(f"evaluating {name} through vLLM ...", file=sys.stderr, flush=True)
        m = asyncio.run(measure(path, "float32" if name == "original" else "auto", args))
        size = checkpoint_size(path)
        turns, success = m["eval"]["turns"], m["eval"]["success"]
        kv_bytes = 4 if m["dtype"] == "float32" else 2
        predicted = predicted_kv_tokens(arch, KV_SPACE_GIB * GIB, kv_bytes)
        rows.append({
            "variant": name, "dtype": m["dtype"], "left_16bit": list(left),
            "weight_bytes": size.weight_bytes, "size_ratio": original_size.weight_bytes / size.weight_bytes,
            "layer_ratio": (size.quantized_layer_params * 2 / size.quantized_layer_bytes
                            if size.quantized_layer_bytes else None),
            "kl_mean": worker["kl_mean"] if worker else 0.0,
            "format_validity": turns["format_validity"], "confidence_brier": turns["confidence_brier"],
            "rollout_accuracy": turns["rollout_accuracy"], "success_greedy": success["model_greedy"],
            "success_best_of_n": success["model_best_of_n"], "tokens_per_s": m["tokens_per_s"],
            "kv_cache_tokens": m["kv_cache_tokens"], "kv_predicted": predicted,
            "kv_ratio": (predicted / m["kv_cache_tokens"]) if m["kv_cache_tokens"] else None,
        })
    base = rows[0]
    print(f"\nreference model, {args.states} held-out states, {args.episodes} held-out episodes, "
          f"best-of-{args.best_of}")
    print("| variant | dtype | weights | size ratio | quantized layers | KL | validity | Brier (Δ) | rollout acc |"
          " success greedy (Δ) | success best-of-N (Δ) | tok/s | KV tokens vLLM / fit |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        layer = f"{r['layer_ratio']:.2f}×" if r["layer_ratio"] else "—"
        print(f"| {r['variant']} | {r['dtype']} | {r['weight_bytes'] / 1e6:.2f} MB | {r['size_ratio']:.2f}× "
              f"| {layer} | "
              f"{r['kl_mean']:.5f} | {r['format_validity']:.3f} | {r['confidence_brier']:.4f} "
              f"({r['confidence_brier'] - base['confidence_brier']:+.4f}) | {r['rollout_accuracy']:.3f} | "
              f"{r['success_greedy']:.3f} ({100 * (r['success_greedy'] - base['success_greedy']):+.1f} pt) | "
              f"{r['success_best_of_n']:.3f} ({100 * (r['success_best_of_n'] - base['success_best_of_n']):+.1f} pt)"
              f" | {r['tokens_per_s']:.0f} | {r['kv_cache_tokens']:,} / {r['kv_predicted']:,} |")
        if r["left_16bit"]:
            print(f"|   ↳ left 16-bit (width not a multiple of the group): {', '.join(r['left_16bit'])} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
