"""Adapters on an added base: what one says it was trained on, and whether it fits a base.

A LoRA adapter directory holds peft's ``adapter_config.json`` and weights, and our :data:`ADAPTER_META`: the
base it was trained on, by name and by sha256 (the one the base's ``source.json`` records, else its weights'
own), the world, the stages and their steps. A server refuses an adapter whose base is another. A checkpoint
``foresight quantize`` made from a base carries :data:`QUANTIZED_FROM`, naming that base's digest: an adapter
of the base fits it (a quantized base, a bfloat16 adapter). Pure Python.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.errors import AdapterMismatch, NotAnAdapter
from catalog.known import SOURCE_FILE

ADAPTER_META = "foresight_adapter.json"
QUANTIZED_FROM = "quantized_from.json"  # {"model": the original's path, "sha256": its base_sha256}
PEFT_CONFIG = "adapter_config.json"


def base_sha256(base: str | Path) -> str:
    """A base's identity: the sha256 its ``source.json`` recorded (a catalog add), else the one of the base it
    was quantized from (:data:`QUANTIZED_FROM`), else of its weights."""
    path = Path(base)
    for record in (SOURCE_FILE, QUANTIZED_FROM):
        try:
            recorded = json.loads((path / record).read_text()).get("sha256")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(recorded, str) and recorded:
            return recorded
    digest = hashlib.sha256()
    for f in sorted(path.glob("*.safetensors")):
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def read_meta(path: str | Path) -> dict[str, Any]:
    """What an adapter directory says it was trained on (:data:`ADAPTER_META`); empty if it says nothing."""
    try:
        meta = json.loads((Path(path) / ADAPTER_META).read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


@dataclass(frozen=True)
class AdapterInfo:
    """An adapter checked against the base it is to be served on."""

    path: Path
    rank: int
    base_sha256: str | None  # None: the adapter does not say (then it is served, and listed as unverified)
    meta: dict[str, Any]


def check_adapter(path: str | Path, base: str | Path, base_digest: str | None = None) -> AdapterInfo:
    """``path`` as an adapter to serve on ``base``: raises :class:`NotAnAdapter` for a directory that is no LoRA
    adapter, :class:`AdapterMismatch` for one trained on another base (``base_digest``: the base's sha256
    where the caller computed it once)."""
    p = Path(path)
    try:
        peft = json.loads((p / PEFT_CONFIG).read_text())
    except FileNotFoundError:
        raise NotAnAdapter(f"{p} is not a LoRA adapter (no {PEFT_CONFIG})") from None
    except (OSError, ValueError) as exc:
        raise NotAnAdapter(f"{p}/{PEFT_CONFIG} cannot be read: {exc}") from None
    if not isinstance(peft, dict) or str(peft.get("peft_type", "LORA")).upper() != "LORA":
        raise NotAnAdapter(f"{p} is not a LoRA adapter ({PEFT_CONFIG} names another kind)")
    if not any(p.glob("adapter_model.*")):
        raise NotAnAdapter(f"{p} has no adapter weights (adapter_model.safetensors)")
    meta = read_meta(p)
    wanted = meta.get("base_sha256") if isinstance(meta.get("base_sha256"), str) else None
    if wanted is not None:
        have = base_digest or base_sha256(base)
        if wanted != have:
            raise AdapterMismatch(f"{p} was trained on base {meta.get('base', '?')} (sha256 {wanted[:12]}…), "
                                  f"not on the served {Path(base).name} (sha256 {have[:12]}…)")
    rank = peft.get("r")
    return AdapterInfo(p, int(rank) if isinstance(rank, int) else 0, wanted, meta)
