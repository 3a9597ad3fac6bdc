"""``foresight fit``: which scheme fits a GPU budget, with what concurrency, and the vLLM arguments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from quantize.errors import BadModelConfig, NothingFits, QuantizeError
from quantize.vram import GIB, Architecture, Fit, FitRequest, recommend


def read_config_json(cfg_path: Path, error: type[QuantizeError] = BadModelConfig) -> dict[str, Any]:
    """A checkpoint's config.json as a dict, or ``error`` naming what is wrong with the file."""
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as exc:
        raise error(f"{cfg_path} is not readable JSON: {exc}") from exc
    if not isinstance(cfg, dict):
        raise error(f"{cfg_path} does not hold a JSON object")
    return cfg


def read_architecture(model: str | Path) -> Architecture:
    path = Path(model)
    cfg_path = path / "config.json" if path.is_dir() else path
    if not cfg_path.is_file():
        raise BadModelConfig(f"no config.json at {str(path)!r}: give a Hugging Face checkpoint directory")
    return Architecture.from_config(read_config_json(cfg_path))


def quantized_dir(model: str, f: Fit) -> str:
    return f"{str(model).rstrip('/')}-{f.scheme.name.lower()}-g{f.scheme.group_size}"


def vllm_args(model: str, f: Fit, req: FitRequest) -> list[str]:
    """The vLLM arguments for this scheme (W8A16/W4A16 load the checkpoint `foresight quantize` writes)."""
    path = quantized_dir(model, f) if f.scheme.group_size else str(model)
    args = ["--model", path]
    if f.scheme.name == "bf16":
        args += ["--dtype", "bfloat16"]
    elif f.scheme.name == "fp8":
        args += ["--quantization", "fp8"]
    seqs = max(1, min(req.concurrency, f.max_concurrency))
    args += ["--tensor-parallel-size", str(req.tp), "--max-model-len", str(req.context), "--max-num-seqs", str(seqs),
             "--gpu-memory-utilization", str(req.gpu_memory_utilization)]
    return args


def as_json(model: str, fits: list[Fit], req: FitRequest) -> list[dict[str, Any]]:
    best = recommend(fits)
    return [{
        "scheme": f.scheme.label, "fits": f.fits, "weight_bytes": f.weight_bytes,
        "weight_bytes_per_gpu": f.weight_bytes_per_gpu, "kv_bytes_per_token": f.kv_bytes_per_token,
        "reserve_bytes": f.reserve_bytes, "kv_room_bytes": f.kv_room_bytes, "max_concurrency": f.max_concurrency,
        "recommended": f is best, "vllm_args": vllm_args(model, f, req),
        "quantize_command": (f"foresight quantize --model {model} --out {quantized_dir(model, f)} --scheme "
                             f"{f.scheme.name} --group-size {f.scheme.group_size}") if f.scheme.group_size else None,
    } for f in fits]


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.2f}M"


def _gib(n: float) -> str:
    return f"{n / GIB:.2f}"


def table(model: str, arch: Architecture, fits: list[Fit], req: FitRequest, gpu_label: str) -> str:
    lines = [
        f"model {model}: {_count(arch.params)} parameters, {arch.layers} layers, {arch.kv_heads} KV heads × "
        f"{arch.head_dim}",
        f"on {gpu_label} × {req.tp} (tensor parallel), {req.gpu_memory_utilization:.0%} of "
        f"{_gib(req.vram_bytes)} GiB each; context {req.context}, concurrency {req.concurrency}",
        f"{'scheme':<12}{'weights GiB':>12}{'per GPU':>9}{'KV/token':>10}{'reserve':>9}{'KV room':>9}"
        f"{'max conc.':>10}  fits",
    ]
    for f in fits:
        room = _gib(max(0, f.kv_room_bytes))
        lines.append(f"{f.scheme.label:<12}{_gib(f.weight_bytes):>12}{_gib(f.weight_bytes_per_gpu):>9}"
                     f"{f.kv_bytes_per_token / 1024:>8.0f}Ki{_gib(f.reserve_bytes):>9}{room:>9}"
                     f"{f.max_concurrency:>10}  {'yes' if f.fits else 'no'}")
    best = recommend(fits)
    if best is None:
        most = max(fits, key=lambda f: f.max_concurrency)
        raise NothingFits(
            f"nothing fits {req.concurrency} sequences of {req.context} tokens on {gpu_label} × {req.tp}: the best, "
            f"{most.scheme.label}, holds {most.max_concurrency}. Lower --concurrency or --context, add --gpus, or "
            "pick a larger GPU.\n" + "\n".join(lines))
    lines.append(f"recommended: {best.scheme.label} (the most precise scheme that fits)")
    if best.scheme.group_size:
        lines.append(f"  first: foresight quantize --model {model} --out {quantized_dir(model, best)} "
                     f"--scheme {best.scheme.name} --group-size {best.scheme.group_size}")
    lines.append("  vllm serve " + " ".join(vllm_args(model, best, req)))
    return "\n".join(lines)
