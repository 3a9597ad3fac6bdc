"""Enterprise GPUs deployed on-premise: memory, typical board power, a default list price.

Memory is what ``nvidia-smi`` reports as total (MiB); power is the board's TDP; prices are rough
list prices in USD (2026) and only defaults for the TCO model — override them with your own
(``foresight fit --vram``, and the ``tco_*`` settings). ``fp8`` says whether the GPU computes in FP8
natively (Ada, Hopper, Blackwell); Ampere runs FP8 checkpoints as weight-only (Marlin).
"""

from __future__ import annotations

from dataclasses import dataclass

from quantize.errors import UnknownGpu


@dataclass(frozen=True)
class Gpu:
    """One GPU model."""

    name: str
    memory_mib: int
    power_watts: int
    price_usd: int
    fp8: bool

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * 2**20


CATALOG: dict[str, Gpu] = {g.name.lower(): g for g in (
    Gpu("L4", 23_034, 72, 2_500, True),
    Gpu("L40S", 46_068, 350, 8_000, True),
    Gpu("A10", 23_028, 150, 3_000, False),
    Gpu("A100-40GB", 40_960, 400, 10_000, False),
    Gpu("A100-80GB", 81_920, 400, 15_000, False),
    Gpu("H100-PCIe", 81_559, 350, 25_000, True),
    Gpu("H100-SXM", 81_559, 700, 30_000, True),
    Gpu("H200", 143_771, 700, 35_000, True),
    Gpu("RTX-6000-Ada", 49_140, 300, 6_800, True),
    Gpu("B200", 183_359, 1000, 45_000, True),
)}


def find_gpu(name: str) -> Gpu:
    key = name.strip().lower().replace(" ", "-").replace("_", "-")
    if key in CATALOG:
        return CATALOG[key]
    aliases = {"a100": "a100-80gb", "h100": "h100-sxm", "rtx6000ada": "rtx-6000-ada", "rtx-6000": "rtx-6000-ada"}
    if key in aliases:
        return CATALOG[aliases[key]]
    known = ", ".join(g.name for g in CATALOG.values())
    raise UnknownGpu(f"unknown GPU {name!r}; known: {known} (or give --vram GiB)")
