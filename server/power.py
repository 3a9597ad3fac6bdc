"""Where energy readings come from: NVML on NVIDIA GPUs, otherwise an estimate from busy time.

The only module that imports ``pynvml`` (package ``nvidia-ml-py``), and only when asked to.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("foresight.power")


@dataclass(frozen=True)
class GpuReading:
    """One GPU at one moment."""

    index: int
    power_watts: float
    memory_used_bytes: int
    utilization_ratio: float
    energy_joules: float | None  # the driver's cumulative counter, when supported


class PowerSource(Protocol):
    method: str

    def read(self) -> list[GpuReading]: ...


class NvmlPower:
    """NVIDIA GPUs through NVML: power, memory, utilization and the cumulative energy counter."""

    method = "nvml"

    def __init__(self) -> None:
        import pynvml

        self._nvml: Any = pynvml
        pynvml.nvmlInit()
        self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        if not self._handles:
            raise RuntimeError("NVML found no GPU")

    def read(self) -> list[GpuReading]:
        nv = self._nvml
        out = []
        for i, h in enumerate(self._handles):
            try:
                energy: float | None = nv.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0  # mJ → J
            except nv.NVMLError:
                energy = None
            out.append(GpuReading(
                index=i,
                power_watts=nv.nvmlDeviceGetPowerUsage(h) / 1000.0,  # mW → W
                memory_used_bytes=int(nv.nvmlDeviceGetMemoryInfo(h).used),
                utilization_ratio=nv.nvmlDeviceGetUtilizationRates(h).gpu / 100.0,
                energy_joules=energy,
            ))
        return out


def detect_power(mode: str) -> PowerSource | None:
    """``mode``: "auto" (NVML if it works, else estimate), "nvml" (required) or "estimated" (never NVML).

    Returns None for estimation (the caller multiplies configured watts by busy time)."""
    if mode == "estimated":
        return None
    try:
        return NvmlPower()
    except Exception as exc:  # no library, no driver, no GPU
        if mode == "nvml":
            raise RuntimeError(f"power_source=nvml but NVML is not usable: {exc}") from exc
        log.info("no NVML (%s): energy is estimated from configured power × busy time", exc)
        return None
