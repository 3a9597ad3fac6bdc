"""GGUF → Hugging Face checkpoint, with transformers' GGUF reader (the ``gguf`` package) doing the reading
and dequantizing. transformers refuses to save a GGUF-loaded model, so its state dict goes into a plain
model built from the same config, which saves a normal checkpoint (safetensors, tokenizer, template).

Weights are kept in float32: the GGUF's Q4_1 blocks dequantize to values (4-bit code × fp16 scale + fp16
minimum) that bfloat16's 8-bit mantissa would round again; float32 holds them exactly, so the served model
is the GGUF's and a float32 server can be compared token for token with transformers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from catalog.errors import CheckFailed
from catalog.known import KnownModel


def convert(gguf: Path, out: Path) -> dict[str, Any]:
    """Write the checkpoint into ``out``; returns what the conversion did (for source.json)."""
    print("reading and dequantizing the GGUF (transformers' reader)", file=sys.stderr)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the saved weights are plain float32, not GGUF blocks
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise CheckFailed(f"the GGUF's tensors do not fill the model: missing {missing}, unexpected {unexpected}")
    if config.tie_word_embeddings:
        plain.tie_weights()
    print(f"saving the checkpoint to {out}", file=sys.stderr)
    plain.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    eos = tokenizer.convert_tokens_to_ids(tokenizer.eos_token) if tokenizer.eos_token else config.eos_token_id
    GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=eos, pad_token_id=config.pad_token_id
                     ).save_pretrained(out)
    params = sum(p.numel() for p in plain.parameters())
    return {"reader": "transformers GGUF reader (gguf package)", "dtype": "float32", "parameters": params,
            "architecture": type(plain).__name__, "tie_word_embeddings": bool(config.tie_word_embeddings)}


def greedy_answer(checkpoint: Path, question: str, max_new_tokens: int = 24) -> str:
    """The checkpoint's greedy chat answer in float32 with transformers (its end-of-turn token dropped)."""
    tokenizer: Any = AutoTokenizer.from_pretrained(checkpoint)
    model: Any = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)["input_ids"]
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False)
    return str(tokenizer.decode(out[0][ids.shape[1]:], skip_special_tokens=True)).strip()


def check(model: KnownModel, checkpoint: Path) -> str:
    """Raises CheckFailed unless the checkpoint answers the catalog's fixed question as expected."""
    answer = greedy_answer(checkpoint, model.check_question)
    if answer != model.check_answer:
        raise CheckFailed(f"the converted model answered {answer!r} to {model.check_question!r}, "
                          f"expected {model.check_answer!r}")
    return answer

