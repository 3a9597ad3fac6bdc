"""The quantization worker: GPTQ through llm-compressor, then the logit KL of the result.

Run by ``foresight quantize`` in the quantization environment (``.venv-quantize``: llm-compressor pins
a compressed-tensors and transformers that vLLM's do not share, DESIGN §7) as::

    python -m quantize.gptq JOB.json

``JOB.json`` holds the :class:`quantize.plan.QuantPlan`, the calibration and held-out trace files and
where to write the result. The only module that imports llmcompressor. Progress goes to stderr.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

STAGES = 5


def _stage(n: int, text: str) -> None:
    print(f"[{n}/{STAGES}] {text}", file=sys.stderr, flush=True)


def _read_traces(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [r for r in map(json.loads, fh) if r]


def _render(tok: Any, trace: dict[str, Any]) -> tuple[str, str, bool]:
    """(prompt, completion, whether the completion still needs its end of sequence). A ``messages`` trace is
    rendered by the model's chat template (the completion then ends with the template's own end of turn)."""
    msgs = trace.get("messages")
    if not msgs or not getattr(tok, "chat_template", None):
        if msgs:
            return "\n".join(m["content"] for m in msgs[:-1]) + "\n", msgs[-1]["content"], True
        return trace["prompt"], trace["completion"], True
    prompt = tok.apply_chat_template(msgs[:-1], add_generation_prompt=True, tokenize=False)
    full = tok.apply_chat_template(msgs, tokenize=False)
    if not full.startswith(prompt):
        return prompt, msgs[-1]["content"], True
    return prompt, full[len(prompt):], False


def _encode(tok: Any, trace: dict[str, Any], max_len: int) -> tuple[list[int], int]:
    """Token ids of prompt + completion (+ EOS) and where the completion starts."""
    prompt, completion, eos = _render(tok, trace)
    # a template writes its own special tokens (a BOS among them): encoding must not add a second
    head = (list(tok(prompt, add_special_tokens=eos)["input_ids"]) if prompt
            else [tok.bos_token_id] if tok.bos_token_id is not None else [])
    body = list(tok(completion, add_special_tokens=False)["input_ids"])
    if eos and tok.eos_token_id is not None:
        body.append(tok.eos_token_id)
    return (head + body)[:max_len], min(len(head), max_len)


def quantize(job: dict[str, Any]) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import GPTQModifier
    from transformers import AutoModelForCausalLM, AutoTokenizer

    plan = job["plan"]
    torch.manual_seed(plan["seed"])
    out = Path(plan["out"])
    started = time.monotonic()
    _stage(1, f"loading {plan['model']} as {plan['dtype']}")
    dtype = getattr(torch, plan["dtype"])
    model = AutoModelForCausalLM.from_pretrained(plan["model"], dtype=dtype)
    tok = AutoTokenizer.from_pretrained(plan["model"])
    traces = _read_traces(job["calibration"])
    ids = [_encode(tok, t, plan["max_seq_length"])[0] for t in traces]
    ds = Dataset.from_dict({"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids]})

    _stage(2, f"GPTQ {plan['scheme']} group {plan['group_size']} on {len(ids)} calibration traces "
              f"({sum(map(len, ids))} tokens)")
    oneshot(model=model, dataset=ds, recipe=GPTQModifier(**plan["recipe"]),
            max_seq_length=plan["max_seq_length"], num_calibration_samples=len(ids))
    gptq_s = time.monotonic() - started

    _stage(3, f"writing compressed-tensors to {out}")
    model.save_pretrained(out, save_compressed=True)
    tok.save_pretrained(out)
    for extra in ("chat_template.jinja", "generation_config.json"):
        src = Path(plan["model"]) / extra
        if src.is_file() and not (out / extra).exists():
            shutil.copy2(src, out / extra)
    del model

    _stage(4, "reloading both checkpoints for the logit KL on held-out traces")
    from quantize.divergence import combine, logit_divergence

    original = AutoModelForCausalLM.from_pretrained(plan["model"], dtype=torch.float32).eval()
    # float32 compute on both sides: the KL measures the weights' change, not 16-bit activations
    quantized = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    sets = []
    for named in job["heldout"]:
        held = [_encode(tok, t, plan["max_seq_length"]) for t in _read_traces(named["path"])]
        sets.append({"name": named["name"], "traces": len(held), **logit_divergence(original, quantized, held)})
    div = combine(sets)

    _stage(5, "greedy generation from the reloaded quantized checkpoint")
    first = _read_traces(job["heldout"][0]["path"])[0]
    prompt = _render(tok, first)[0] or tok.bos_token or ""
    enc = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        gen = quantized.generate(**enc, max_new_tokens=48, do_sample=False)
    sample = tok.decode(gen[0][enc["input_ids"].shape[1]:], skip_special_tokens=True)

    import compressed_tensors
    import llmcompressor
    import transformers

    cfg = json.loads((out / "config.json").read_text())
    return {
        "quant_method": cfg.get("quantization_config", {}).get("quant_method"),
        "calibration_traces": len(ids),
        "calibration_tokens": sum(map(len, ids)),
        "heldout_traces": sum(s["traces"] for s in sets),
        **div,
        "heldout_sets": sets,
        "sample_prompt": prompt,
        "sample": sample,
        "gptq_seconds": round(gptq_s, 2),
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "cuda_peak_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0,
        "seconds": round(time.monotonic() - started, 2),
        "versions": {"llmcompressor": llmcompressor.__version__, "compressed_tensors": compressed_tensors.__version__,
                     "transformers": transformers.__version__, "torch": torch.__version__},
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m quantize.gptq JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(args[0]).read_text())
    result = quantize(job)
    Path(job["result"]).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
