"""What ``foresight quantize`` will do to a checkpoint, decided before any weight is loaded. Pure Python.

Checks the checkpoint is a causal LM that is not quantized already, that every linear layer's
input width is a multiple of the group size (compressed-tensors and vLLM's kernels need whole
groups), and builds the GPTQ recipe handed to llm-compressor: weight-only, symmetric integer,
per-group scales, ``lm_head`` (and the tied embedding) left 16-bit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from quantize.errors import BadCheckpoint, BadModelConfig, IndivisibleLayers
from quantize.fit import read_config_json
from quantize.vram import Architecture

SCHEMES = {"W4A16": 4, "W8A16": 8}
GROUP_SIZES = (32, 64, 128)
CAST_DTYPES = ("bfloat16", "float16")


@dataclass(frozen=True)
class QuantPlan:
    """Everything the worker needs to quantize one checkpoint (serialized to it as JSON)."""

    model: str
    out: str
    scheme: str
    group_size: int
    dtype: str = "bfloat16"
    ignore: tuple[str, ...] = ("lm_head",)
    left_16bit: tuple[str, ...] = ()  # linear layer kinds skipped because their width is not whole groups
    max_seq_length: int = 512
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bits(self) -> int:
        return SCHEMES[self.scheme]

    def recipe(self) -> dict[str, Any]:
        """Keyword arguments of llm-compressor's ``GPTQModifier``."""
        return {
            "ignore": list(self.ignore),
            "config_groups": {
                "group_0": {
                    "targets": ["Linear"],
                    "weights": {"num_bits": self.bits, "type": "int", "symmetric": True,
                                "strategy": "group", "group_size": self.group_size},
                }
            },
        }

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def read_config(model: str | Path) -> dict[str, Any]:
    path = Path(model)
    if not path.is_dir():
        raise BadCheckpoint(f"{str(path)!r} is not a directory (give a Hugging Face checkpoint directory)")
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise BadCheckpoint(f"{str(path)!r} has no config.json: not a Hugging Face checkpoint")
    return read_config_json(cfg_path, BadCheckpoint)


def check_causal_lm(cfg: dict[str, Any], where: str) -> None:
    archs = cfg.get("architectures") or []
    if not any(isinstance(a, str) and a.endswith("ForCausalLM") for a in archs):
        raise BadCheckpoint(f"{where} is not a causal language model (architectures: {archs or 'none'}); "
                            "foresight quantize takes a *ForCausalLM checkpoint")
    quant = cfg.get("quantization_config")
    if quant:
        method = quant.get("quant_method", "?") if isinstance(quant, dict) else "?"
        raise BadCheckpoint(f"{where} is already quantized ({method}); quantize the 16/32-bit original")
    has_weights = any(Path(where).glob("*.safetensors")) or any(Path(where).glob("*.bin"))
    if not has_weights:
        raise BadCheckpoint(f"{where} holds no weights (*.safetensors or *.bin)")


def linear_inputs(arch: Architecture) -> dict[str, int]:
    """Input width of each kind of linear layer in a Llama/Qwen/Mistral decoder block."""
    attn_out = arch.heads * arch.head_dim
    return {"q_proj": arch.hidden, "k_proj": arch.hidden, "v_proj": arch.hidden, "o_proj": attn_out,
            "gate_proj": arch.hidden, "up_proj": arch.hidden, "down_proj": arch.intermediate}


def indivisible(arch: Architecture, group_size: int) -> dict[str, int]:
    return {k: w for k, w in linear_inputs(arch).items() if w % group_size}


def make_plan(model: str, out: str, scheme: str, group_size: int, *, skip_indivisible: bool = False,
              dtype: str = "bfloat16", max_seq_length: int = 512, seed: int = 0) -> QuantPlan:
    """Check the checkpoint and the options; the plan, or an error naming what to change."""
    if scheme not in SCHEMES:
        raise BadCheckpoint(f"unknown scheme {scheme!r}: choose one of {', '.join(SCHEMES)}")
    if group_size not in GROUP_SIZES:
        raise BadCheckpoint(f"group size {group_size} is not supported: choose one of {GROUP_SIZES}")
    if dtype not in CAST_DTYPES:
        raise BadCheckpoint(f"dtype {dtype!r}: choose one of {', '.join(CAST_DTYPES)}")
    cfg = read_config(model)
    check_causal_lm(cfg, model)
    try:
        arch = Architecture.from_config(cfg)
    except BadModelConfig as exc:
        raise BadCheckpoint(f"{model}: {exc}") from exc
    bad = indivisible(arch, group_size)
    ignore: tuple[str, ...] = ("lm_head",)
    if bad:
        listed = ", ".join(f"{k} ({w})" for k, w in bad.items())
        if len(bad) == len(linear_inputs(arch)):
            raise IndivisibleLayers(f"no linear layer's input width is a multiple of group size {group_size}: "
                                    f"{listed}")
        if not skip_indivisible:
            # the largest group that divides them: the fewest scales
            other = sorted((g for g in GROUP_SIZES if g != group_size and not indivisible(arch, g)), reverse=True)
            hint = f"use --group-size {other[0]}" if other else "no supported group size divides them"
            raise IndivisibleLayers(
                f"input width of {listed} is not a multiple of group size {group_size} (compressed-tensors and "
                f"vLLM's kernels need whole groups): {hint}, or --skip-indivisible to leave those layers 16-bit")
        ignore += tuple(f"re:.*{k}$" for k in bad)
    return QuantPlan(model=str(model), out=str(out), scheme=scheme, group_size=group_size, dtype=dtype,
                     ignore=ignore, left_16bit=tuple(bad), max_seq_length=max_seq_length, seed=seed)
