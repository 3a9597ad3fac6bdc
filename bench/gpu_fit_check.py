"""Real GPU memory of weights and KV cache against `foresight fit`'s estimate (needs a CUDA GPU; no vLLM).

For each architecture (an 8B Llama with GQA, a 7B Qwen2 with QKV bias, and the reference model),
builds the model from its config directly on the GPU in bfloat16 (random weights: memory does not
depend on values), reads ``torch.cuda.memory_allocated`` and compares it with the fit tool's bf16
weight bytes; then runs one prefill of ``--tokens`` tokens and compares the KV-cache bytes per
token the model really allocated with ``2 · layers · kv_heads · head_dim · 2``. With ``--w4a16 DIR``
it also loads a checkpoint written by ``foresight quantize`` (compressed-tensors, kept compressed)
and compares its memory with the fit tool's W4A16 weight estimate. Prints a table; ``--json FILE``
writes the numbers.

    python bench/gpu_fit_check.py --tokens 2048 --w4a16 runs/numberreach-w4a16-g64 --json fit.json
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path

from quantize.vram import GIB, Architecture, FitRequest, fit, schemes

LLAMA3_8B = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
             "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
             "tie_word_embeddings": False, "max_position_embeddings": 8192}
QWEN2_7B = {"model_type": "qwen2", "hidden_size": 3584, "num_hidden_layers": 28, "num_attention_heads": 28,
            "num_key_value_heads": 4, "intermediate_size": 18944, "vocab_size": 152064,
            "tie_word_embeddings": False, "max_position_embeddings": 8192}


def _kv_bytes(cache) -> int:  # type: ignore[no-untyped-def]
    total = 0
    for layer in getattr(cache, "layers", []):
        for name in ("keys", "values"):
            t = getattr(layer, name, None)
            total += t.numel() * t.element_size() if t is not None else 0
    if not total and hasattr(cache, "key_cache"):
        total = sum(t.numel() * t.element_size() for t in [*cache.key_cache, *cache.value_cache])
    return total


def check(name: str, cfg: dict, tokens: int) -> dict:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    arch = Architecture.from_config(cfg)
    req = FitRequest(vram_bytes=80 * GIB)
    bf16 = fit(arch, schemes()[0], req)
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    conf = AutoConfig.for_model(**cfg)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(conf, dtype=torch.bfloat16)
    weights = torch.cuda.memory_allocated() - before
    n = min(tokens, conf.max_position_embeddings)
    ids = torch.randint(0, conf.vocab_size, (1, n), device="cuda")
    with torch.no_grad():
        out = model(ids, use_cache=True, logits_to_keep=1)
    kv_per_token = _kv_bytes(out.past_key_values) / n
    row = {"model": name, "params": sum(p.numel() for p in model.parameters()), "fit_params": arch.params,
           "weight_bytes": weights, "fit_weight_bytes": bf16.weight_bytes, "weight_ratio": weights / bf16.weight_bytes,
           "kv_bytes_per_token": kv_per_token, "fit_kv_bytes_per_token": arch.kv_bytes_per_token(2),
           "kv_ratio": kv_per_token / arch.kv_bytes_per_token(2), "tokens": n}
    del model, out
    gc.collect()
    torch.cuda.empty_cache()
    return row


def check_w4a16(path: str) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    cfg = json.loads((Path(path) / "config.json").read_text())
    group = cfg["quantization_config"]["config_groups"]["group_0"]["weights"]["group_size"]
    arch = Architecture.from_config(cfg)
    est = fit(arch, schemes(group)[3], FitRequest(vram_bytes=80 * GIB))
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    try:  # keep the weights packed on the GPU (the default may decompress them to 16 bits)
        from transformers import CompressedTensorsConfig

        kw = {"quantization_config": CompressedTensorsConfig(run_compressed=True)}
    except ImportError:
        kw = {}
    model = AutoModelForCausalLM.from_pretrained(path, device_map="cuda", **kw)
    packed = any(n.endswith("weight_packed") for n, _ in model.named_parameters()) or any(
        n.endswith("weight_packed") for n, _ in model.named_buffers())
    used = torch.cuda.memory_allocated() - before
    del model
    torch.cuda.empty_cache()
    return {"model": Path(path).name, "weight_bytes": used, "fit_weight_bytes": est.weight_bytes,
            "weight_ratio": used / est.weight_bytes, "kept_packed": packed}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--reference", default="models/foresight-numberreach")
    ap.add_argument("--w4a16", help="a checkpoint written by foresight quantize")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu_fit_check: no CUDA GPU here", file=sys.stderr)
        return 2
    ref = json.loads((Path(args.reference) / "config.json").read_text())
    ref.pop("dtype", None)
    ref.pop("architectures", None)
    rows = [check(n, c, args.tokens) for n, c in (("llama3-8b", LLAMA3_8B), ("qwen2-7b", QWEN2_7B),
                                                 ("foresight-numberreach", ref))]
    print(f"GPU: {torch.cuda.get_device_name()}")
    print("| model | params (real / fit) | bf16 weights real / fit | KV B/token real / fit |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['model']} | {r['params']:,} / {r['fit_params']:,} | {r['weight_bytes']:,} / "
              f"{r['fit_weight_bytes']:,} ({r['weight_ratio']:.4f}) | {r['kv_bytes_per_token']:.0f} / "
              f"{r['fit_kv_bytes_per_token']:.0f} ({r['kv_ratio']:.4f}) |")
    result: dict = {"device": torch.cuda.get_device_name(), "rows": rows}
    if args.w4a16:
        q = check_w4a16(args.w4a16)
        result["w4a16"] = q
        print(f"W4A16 {q['model']}: real {q['weight_bytes']:,} B, fit {q['fit_weight_bytes']:,} B "
              f"({q['weight_ratio']:.3f}), kept packed: {q['kept_packed']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
