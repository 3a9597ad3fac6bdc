"""``foresight fit``: fit a checkpoint to a GPU's memory budget (pure math, no torch)."""

from __future__ import annotations

import argparse
import json
import sys

from quantize.errors import QuantizeError
from quantize.gpus import CATALOG, find_gpu
from quantize.vram import GIB, FitRequest, fit_all


def add_fit(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "fit", help="which quantization scheme fits a GPU, with what concurrency, and the vLLM arguments",
        description="Per scheme (bf16, fp8, W8A16, W4A16): weight bytes, KV bytes per token, reserve, KV room, "
                    "max concurrent sequences at --context, and the vLLM arguments; recommends one.",
        epilog="GPUs: " + ", ".join(g.name for g in CATALOG.values()) +
               ". example: foresight fit --model ./ckpt --gpu L40S --context 8192 --concurrency 32",
    )
    p.add_argument("--model", required=True, help="checkpoint directory (its config.json is read), or the name "
                                                  "of a model added with `foresight models add`")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--gpu", help="GPU name from the catalog")
    where.add_argument("--vram", type=float, help="GPU memory in GiB (instead of --gpu)")
    p.add_argument("--gpus", type=int, default=1, help="GPUs per replica, tensor parallel (default 1)")
    p.add_argument("--context", type=int, default=8192, help="tokens per sequence (default 8192)")
    p.add_argument("--concurrency", type=int, default=16, help="concurrent sequences wanted (default 16)")
    p.add_argument("--group-size", type=int, default=128, choices=(32, 64, 128), help="W4A16/W8A16 group size")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="vLLM's share of GPU memory (0.9)")
    p.add_argument("--json", action="store_true", help="print one JSON object per scheme, as a list")
    p.set_defaults(func=_fit)


def _fit(args: argparse.Namespace) -> int:
    from catalog.errors import CatalogError
    from foresight.models import checkpoint
    from quantize.fit import as_json, read_architecture, table

    try:
        args.model = checkpoint(args.model)
        if args.gpu:
            gpu = find_gpu(args.gpu)
            vram, label = gpu.memory_bytes, gpu.name
        else:
            if args.vram <= 0:
                raise QuantizeError("--vram must be positive (GiB)")
            vram, label = int(args.vram * GIB), f"{args.vram:g} GiB GPU"
        req = FitRequest(vram_bytes=vram, tp=args.gpus, context=args.context, concurrency=args.concurrency,
                         gpu_memory_utilization=args.gpu_memory_utilization)
        arch = read_architecture(args.model)
        if arch.heads % args.gpus:
            raise QuantizeError(f"--gpus {args.gpus} does not divide the {arch.heads} attention heads")
        fits = fit_all(arch, req, args.group_size)
        if args.json:
            print(json.dumps(as_json(args.model, fits, req), indent=2))
            return 0
        print(table(args.model, arch, fits, req, label))
        return 0
    except (QuantizeError, CatalogError, ValueError) as exc:
        print(f"foresight fit: {exc}", file=sys.stderr)
        return 1
