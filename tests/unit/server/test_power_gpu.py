"""NVML power readings on a real NVIDIA GPU (skipped where there is none)."""

from __future__ import annotations

import shutil

import pytest

from server.metrics import Metrics
from server.power import NvmlPower, detect_power
from server.services.monitor import Monitor
from server.tco import TcoConfig

pytestmark = pytest.mark.gpu


@pytest.fixture
def nvml() -> NvmlPower:
    if shutil.which("nvidia-smi") is None:
        pytest.skip("no NVIDIA GPU here")
    pytest.importorskip("pynvml")
    return NvmlPower()


def test_nvml_readings_are_physical(nvml: NvmlPower) -> None:
    readings = nvml.read()
    assert readings
    for g in readings:
        assert 0 < g.power_watts < 2000 and g.memory_used_bytes > 0 and 0 <= g.utilization_ratio <= 1


def test_monitor_uses_the_energy_counter(nvml: NvmlPower) -> None:
    metrics = Metrics()
    clock = [0.0]
    mon = Monitor(metrics, TcoConfig(), nvml, lambda: 0, waiting=lambda: 0, clock=lambda: clock[0])
    assert mon.method == "nvml"
    mon.tick()
    import time

    time.sleep(1.0)
    clock[0] = 1.0
    mon.tick()
    joules = metrics.registry.get_sample_value("foresight_energy_joules_total", {"method": "nvml"})
    assert joules is not None and joules > 0  # an idle GPU still draws tens of watts


def test_estimated_mode_never_touches_nvml() -> None:
    assert detect_power("estimated") is None
