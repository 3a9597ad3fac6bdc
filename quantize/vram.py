"""How much GPU memory a checkpoint needs under each scheme, and how many sequences then fit. Pure math.

Per GPU (tensor parallelism divides weights and KV heads across ``tp`` ranks):

- weights: parameters × bytes per parameter of the scheme; linear layers are quantized, the
  embeddings and ``lm_head`` stay 16-bit (as llm-compressor's recipes leave them);
- KV cache per token: ``2 · layers · kv_heads · head_dim · kv_bytes``, divided across ranks;
- reserve: a fixed runtime overhead (CUDA context, cuBLAS/NCCL workspaces, CUDA graphs) plus
  activations for one scheduler step of ``max_batched_tokens`` and the sampler's logits;
- KV room: ``vram · gpu_memory_utilization − weights − reserve``; max concurrency at context C is
  ``floor(KV room / (kv_bytes_per_token · C))`` — the figure vLLM prints at start-up as
  "Maximum concurrency for C tokens per request".
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quantize.errors import BadModelConfig

GIB = 2**30
RUNTIME_OVERHEAD_BYTES = int(1.0 * GIB)
CUDA_GRAPH_BYTES = int(0.5 * GIB)


@dataclass(frozen=True)
class Architecture:
    """What the memory math needs from a Hugging Face config.json."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool
    qkv_bias: bool
    experts: int = 1

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Architecture:
        c = dict(cfg.get("text_config") or cfg)  # multimodal wrappers keep the LM under text_config
        missing = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                               "vocab_size") if not isinstance(c.get(k), int) or c[k] <= 0]
        if missing:
            raise BadModelConfig(f"config.json lacks {', '.join(missing)} (a Llama/Qwen/Mistral-style causal LM "
                                 "config is needed)")
        heads = c["num_attention_heads"]
        kv = c.get("num_key_value_heads") or heads
        head_dim = c.get("head_dim") or c["hidden_size"] // heads
        if heads % kv:
            raise BadModelConfig(f"num_attention_heads {heads} is not a multiple of num_key_value_heads {kv}")
        model_type = str(c.get("model_type", ""))
        bias = bool(c.get("attention_bias", model_type.startswith("qwen2")))
        experts = int(c.get("num_local_experts") or c.get("num_experts") or 1)
        return cls(c["hidden_size"], c["num_hidden_layers"], heads, kv, head_dim, c["intermediate_size"],
                   c["vocab_size"], bool(c.get("tie_word_embeddings", False)), bias, experts)

    @property
    def linear_params(self) -> int:
        """Parameters of the linear layers (what weight quantization compresses)."""
        h, hd = self.hidden, self.head_dim
        attn = h * self.heads * hd * 2 + h * self.kv_heads * hd * 2
        mlp = 3 * h * self.intermediate * self.experts
        router = h * self.experts if self.experts > 1 else 0
        return self.layers * (attn + mlp + router)

    @property
    def other_params(self) -> int:
        """Embeddings, lm_head, norms and biases (kept 16-bit)."""
        emb = self.vocab * self.hidden * (1 if self.tied else 2)
        norms = self.layers * 2 * self.hidden + self.hidden
        bias = self.layers * (self.heads + 2 * self.kv_heads) * self.head_dim if self.qkv_bias else 0
        return emb + norms + bias

    @property
    def params(self) -> int:
        return self.linear_params + self.other_params

    def kv_bytes_per_token(self, kv_bytes: float = 2, tp: int = 1) -> float:
        """KV cache bytes per token on one of ``tp`` ranks (KV heads are split across ranks)."""
        per_rank_heads = max(1, self.kv_heads // tp) if self.kv_heads >= tp else 1  # replicated when kv < tp
        return 2 * self.layers * per_rank_heads * self.head_dim * kv_bytes


@dataclass(frozen=True)
class Scheme:
    """A way to store the weights."""

    name: str
    linear_bytes: float  # per linear parameter, scales included
    kv_bytes: float = 2.0
    group_size: int | None = None

    @property
    def label(self) -> str:
        return f"{self.name} g{self.group_size}" if self.group_size else self.name


def schemes(group_size: int = 128) -> list[Scheme]:
    """bf16, fp8 (per-channel scales), W8A16 and W4A16 (a 16-bit scale per group, symmetric)."""
    return [
        Scheme("bf16", 2.0),
        Scheme("fp8", 1.0 + 4 / 4096),
        Scheme("W8A16", 1.0 + 2 / group_size, group_size=group_size),
        Scheme("W4A16", 0.5 + 2 / group_size, group_size=group_size),
    ]


@dataclass(frozen=True)
class FitRequest:
    """The deployment asked for."""

    vram_bytes: int
    tp: int = 1
    context: int = 8192
    concurrency: int = 16
    gpu_memory_utilization: float = 0.9
    max_batched_tokens: int | None = None  # default: max(context, 8192), vLLM's chunked-prefill budget
    enforce_eager: bool = False

    def __post_init__(self) -> None:
        for name in ("vram_bytes", "tp", "context", "concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError("gpu_memory_utilization must be in (0, 1]")


@dataclass(frozen=True)
class Fit:
    """One scheme on one deployment."""

    scheme: Scheme
    weight_bytes: int  # whole model
    weight_bytes_per_gpu: int
    kv_bytes_per_token: float  # per GPU
    reserve_bytes: int
    kv_room_bytes: int
    max_concurrency: int
    fits: bool


def reserve_bytes(arch: Architecture, req: FitRequest) -> int:
    """Runtime overhead + activations of one step + sampler logits, per GPU (an estimate)."""
    tokens = req.max_batched_tokens or max(req.context, 8192)
    act = tokens * (4 * arch.hidden + 2 * arch.intermediate // req.tp) * 2
    logits = min(req.concurrency, 256) * arch.vocab * 4
    graphs = 0 if req.enforce_eager else CUDA_GRAPH_BYTES
    return RUNTIME_OVERHEAD_BYTES + graphs + act + logits


def fit(arch: Architecture, scheme: Scheme, req: FitRequest) -> Fit:
    weights = int(arch.linear_params * scheme.linear_bytes + arch.other_params * 2)
    per_gpu = math.ceil(weights / req.tp)
    kv = arch.kv_bytes_per_token(scheme.kv_bytes, req.tp)
    reserve = reserve_bytes(arch, req)
    room = int(req.vram_bytes * req.gpu_memory_utilization) - per_gpu - reserve
    max_conc = max(0, math.floor(room / (kv * req.context))) if room > 0 else 0
    return Fit(scheme, weights, per_gpu, kv, reserve, room, max_conc, max_conc >= req.concurrency)


def fit_all(arch: Architecture, req: FitRequest, group_size: int = 128) -> list[Fit]:
    return [fit(arch, s, req) for s in schemes(group_size)]


def recommend(fits: list[Fit]) -> Fit | None:
    """The most precise scheme that fits (bf16 > fp8 > W8A16 > W4A16)."""
    return next((f for f in fits if f.fits), None)


_KV_TOKENS_RE = re.compile(r"(?:GPU|CPU)?\s*KV cache size:\s*([\d,]+)\s*tokens")
_MAX_CONC_RE = re.compile(r"Maximum concurrency for\s*([\d,]+)\s*tokens per request:\s*([\d.]+)x")


@dataclass(frozen=True)
class KvReport:
    """What vLLM prints at start-up about its KV cache."""

    tokens: int
    context: int | None = None
    max_concurrency: float | None = None


def parse_vllm_kv_report(log_text: str) -> KvReport | None:
    """The last "KV cache size: N tokens" (and "Maximum concurrency for C tokens per request: Mx") in a log."""
    sizes = _KV_TOKENS_RE.findall(log_text)
    if not sizes:
        return None
    conc = _MAX_CONC_RE.findall(log_text)
    ctx, mx = (int(conc[-1][0].replace(",", "")), float(conc[-1][1])) if conc else (None, None)
    return KvReport(int(sizes[-1].replace(",", "")), ctx, mx)


def predicted_kv_tokens(arch: Architecture, kv_room_bytes: int, kv_bytes: float = 2, tp: int = 1) -> int:
    """Tokens of KV cache that ``kv_room_bytes`` hold (what vLLM reports as "KV cache size")."""
    return int(kv_room_bytes // arch.kv_bytes_per_token(kv_bytes, tp))
