"""The serving path changes nothing, on a real pretrained model: the server's greedy tokens in float32 are
transformers' greedy tokens (or part where transformers' own top two logits are a near-tie), and
``foresight fit``'s figures are the checkpoint's real bytes and vLLM's real KV cache."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import httpx
import pytest

from quantize.fit import read_architecture
from quantize.vram import FitRequest, fit_all, parse_vllm_kv_report, predicted_kv_tokens
from tests.integration.server_process import ServerProcess

pytestmark = pytest.mark.integration
NEW_TOKENS = 32
NEAR_TIE = 1e-3
PROMPTS = [
    "What is the capital of France?", "Name three primary colors.", "Write a haiku about the sea.",
    "Explain photosynthesis in one sentence.", "What is 17 times 3?", "Translate 'good morning' into Spanish.",
    "Give me a synonym for 'happy'.", "Who wrote Romeo and Juliet?", "List the planets of the solar system.",
    "What does a compiler do?", "Describe a cat to someone who has never seen one.", "What is the boiling point "
    "of water in Fahrenheit?", "Suggest a name for a coffee shop.", "Why is the sky blue?",
    "Write a Python function that adds two numbers.", "What is the largest ocean?", "How many days are in a leap "
    "year?", "Tell me a fun fact about octopuses.", "What is the opposite of 'ancient'?",
    "Summarize the plot of Cinderella in two sentences.",
]


def test_twenty_prompts_greedy_tokens_are_transformers_tokens_in_float32(smol: ServerProcess, smollm2: Path,
                                                                        tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok: Any = AutoTokenizer.from_pretrained(smollm2)
    model: Any = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32)
    report = []
    for question in PROMPTS:
        messages = [{"role": "user", "content": question}]
        r = httpx.post(f"{smol.url}/v1/chat/completions", timeout=120, json={
            "messages": messages, "max_tokens": NEW_TOKENS, "temperature": 0})
        assert r.status_code == 200, r.text
        served = r.json()["choices"][0]["message"]["content"]
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                      return_dict=True)["input_ids"]
        with torch.inference_mode():
            out = model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False, output_logits=True,
                                 return_dict_in_generate=True)
        gen = out.sequences[0][ids.shape[1]:].tolist()
        if gen and gen[-1] == tok.eos_token_id:
            gen = gen[:-1]
        if tok.decode(gen) == served:
            continue
        # the first token whose text leaves the served text: there, transformers' top two must be a near-tie
        k = next(k for k in range(len(gen) + 1) if k == len(gen) or not served.startswith(tok.decode(gen[: k + 1])))
        if k < len(out.logits):
            top2 = torch.topk(out.logits[k][0], 2).values
            gap = float(top2[0] - top2[1])
        else:  # transformers' tokens are all a prefix of the served text: it wrote more, which is a divergence
            gap = float("inf")
        report.append({"prompt": question, "token": k, "gap": gap, "served": served, "transformers": tok.decode(gen)})
    (tmp_path / "divergences.json").write_text(json.dumps(report, indent=2))
    print(f"\n{len(PROMPTS) - len(report)}/{len(PROMPTS)} identical; divergences: {json.dumps(report, indent=2)}")
    assert all(d["gap"] < NEAR_TIE for d in report), report


def _safetensors(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header: dict[str, Any] = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header


def test_fit_reads_its_real_config_and_its_figures_are_the_checkpoints_bytes(smollm2: Path) -> None:
    """Grouped-query attention (9 heads, 3 KV heads) and tied embeddings: the parameters fit counts are the
    tensors stored, bf16 weights are half their float32 bytes, KV per token is what the k/v projections make."""
    tensors = _safetensors(smollm2 / "model.safetensors")
    stored = {name: t for name, t in tensors.items() if name != "lm_head.weight"}  # tied: one copy
    params = sum(int.__mul__(*t["shape"]) if len(t["shape"]) == 2 else t["shape"][0] for t in stored.values())
    data_bytes = sum(t["data_offsets"][1] - t["data_offsets"][0] for t in stored.values())
    arch = read_architecture(smollm2)
    assert arch.tied and (arch.heads, arch.kv_heads) == (9, 3)
    assert arch.params == params
    [bf16] = [f for f in fit_all(arch, FitRequest(vram_bytes=24 * 2**30, context=8192, concurrency=8))
              if f.scheme.name == "bf16"]
    assert bf16.weight_bytes == data_bytes // 2  # stored float32 (4 bytes), served 16-bit (2)
    k = [t["shape"][0] for name, t in stored.items() if name.endswith("self_attn.k_proj.weight")]
    v = [t["shape"][0] for name, t in stored.items() if name.endswith("self_attn.v_proj.weight")]
    assert bf16.kv_bytes_per_token == (sum(k) + sum(v)) * 2


def test_fits_kv_figure_is_vllms_kv_cache(smol: ServerProcess, smollm2: Path) -> None:
    """The session's server has 1 GiB of KV cache (VLLM_CPU_KVCACHE_SPACE=1) in float32: the tokens vLLM
    reports are what fit's per-token figure predicts, to a block."""
    kv = parse_vllm_kv_report(smol.log_path.read_text(errors="replace"))
    assert kv is not None
    predicted = predicted_kv_tokens(read_architecture(smollm2), 2**30, kv_bytes=4)
    assert 0 <= predicted - kv.tokens < 256, (predicted, kv.tokens)
