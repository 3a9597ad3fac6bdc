"""Bytes of a checkpoint on disk, per tensor, read from safetensors headers. Pure Python.

A safetensors file starts with an 8-byte little-endian header length and a JSON header naming
each tensor's dtype, shape and byte range, so sizes need no torch and no loading.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from quantize.errors import BadCheckpoint

DTYPE_BYTES = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2, "U16": 2,
               "F8_E4M3": 1, "F8_E5M2": 1, "I8": 1, "U8": 1, "BOOL": 1}
QUANTIZED_SUFFIXES = (".weight_packed", ".weight_scale", ".weight_zero_point", ".weight_shape", ".weight_g_idx")


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def read_header(path: str | Path) -> list[TensorInfo]:
    p = Path(path)
    try:
        with p.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(length))
    except (OSError, struct.error, ValueError) as exc:
        raise BadCheckpoint(f"{p} is not a readable safetensors file: {exc}") from exc
    out = []
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        lo, hi = meta["data_offsets"]
        out.append(TensorInfo(name, meta["dtype"], tuple(meta["shape"]), hi - lo))
    return out


def tensors(model_dir: str | Path) -> list[TensorInfo]:
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise BadCheckpoint(f"{model_dir} holds no *.safetensors files")
    return [t for f in files for t in read_header(f)]


@dataclass(frozen=True)
class CheckpointSize:
    """Sizes of one checkpoint: files on disk, weights, and the part weight quantization touches."""

    dir_bytes: int
    weight_bytes: int
    params: int  # parameters as stored (packed integers count as their logical values for quantized tensors)
    quantized_layer_bytes: int  # bytes of the tensors that hold quantized layers (packed weights, scales)
    quantized_layer_params: int  # logical parameters of those layers
    bytes_16bit: int  # what the same parameters take in a 16-bit dtype


def _logical_params(ts: list[TensorInfo], bits: int) -> tuple[int, int, int]:
    """(all logical params, params of quantized layers, bytes of quantized-layer tensors).

    A packed weight is ``[out, in · bits / 32]`` int32 words holding ``32 / bits`` values each."""
    quant_bytes = sum(t.nbytes for t in ts if t.name.endswith(QUANTIZED_SUFFIXES))
    quant_params = total = 0
    for t in ts:
        if t.name.endswith(".weight_packed"):
            logical = t.numel * (32 // bits if t.dtype == "I32" else 1)
            quant_params += logical
            total += logical
        elif not t.name.endswith(QUANTIZED_SUFFIXES):
            total += t.numel
    return total, quant_params, quant_bytes


def checkpoint_size(model_dir: str | Path, bits: int = 4) -> CheckpointSize:
    d = Path(model_dir)
    params, qparams, qbytes = _logical_params(tensors(d), bits)
    dir_bytes = sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
    weight_bytes = sum(f.stat().st_size for f in d.glob("*.safetensors"))
    return CheckpointSize(dir_bytes, weight_bytes, params, qbytes, qparams, params * 2)
