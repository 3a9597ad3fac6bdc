"""TCO math against hand-computed figures, and the monitor on scripted traffic."""

from __future__ import annotations

import httpx
import pytest

from server.app import services_of
from server.metrics import Metrics
from server.services.monitor import Monitor
from server.tco import TcoConfig, TcoLedger, energy_cost, estimated_joules

CFG = TcoConfig(hardware_price=31_557.6, accelerators=2, service_life_years=1.0, power_watts=300.0, pue=1.5,
                electricity_price_per_kwh=0.20, window_s=60.0)


def test_hardware_amortization_by_hand() -> None:
    # 2 × 31,557.6 over one year of 31,557,600 s = 0.002 per second, busy or not
    assert CFG.hardware_cost_per_second == pytest.approx(0.002)


def test_energy_cost_by_hand() -> None:
    # 3.6 MJ = 1 kWh; × PUE 1.5 × 0.20 = 0.30
    assert energy_cost(3.6e6, CFG) == pytest.approx(0.30)
    # estimated: 10 s busy × 300 W × 2 accelerators = 6,000 J
    assert estimated_joules(10.0, CFG) == pytest.approx(6000.0)


def test_ledger_totals_and_window_rates() -> None:
    ledger = TcoLedger(CFG, start=0.0)
    ledger.advance(10.0, joules=3.6e6, tokens=1000, decisions=4)
    snap = ledger.snapshot()
    assert snap.hardware_cost == pytest.approx(0.02)
    assert snap.energy_cost == pytest.approx(0.30)
    assert snap.cost_per_1k_tokens == pytest.approx(0.32)
    assert snap.cost_per_decision == pytest.approx(0.08)
    assert snap.joules_per_token == pytest.approx(3600.0)
    # 100 s later, idle: hardware keeps accruing; the window (60 s) has no tokens left in it
    ledger.advance(110.0, joules=0.0)
    ledger.advance(120.0, joules=0.0)
    late = ledger.snapshot()
    assert late.hardware_cost == pytest.approx(0.24)
    assert late.cost_per_1k_tokens is None and late.cost_per_decision is None
    assert late.window_s >= 60.0  # the window reaches back to the last sample at or before now - 60 s


@pytest.mark.parametrize("bad", [{"pue": 0.9}, {"accelerators": 0}, {"service_life_years": 0},
                                 {"hardware_price": -1}])
def test_invalid_inputs_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        TcoConfig(**bad)


def test_monitor_estimates_energy_from_busy_time_and_costs_tokens() -> None:
    metrics = Metrics()
    clock = [0.0]
    busy = [1]
    mon = Monitor(metrics, CFG, None, lambda: busy[0], waiting=lambda: 0, clock=lambda: clock[0])
    metrics.count_tokens("completion", 500)
    metrics.count_decision("commit", "branch_commit")
    metrics.count_decision("commit", "branch_commit")
    clock[0] = 5.0
    mon.tick()
    busy[0] = 0
    clock[0] = 10.0
    mon.tick()
    r = metrics.registry
    assert r.get_sample_value("foresight_energy_joules_total", {"method": "estimated"}) == pytest.approx(3000.0)
    assert r.get_sample_value("foresight_engine_busy_seconds_total") == pytest.approx(5.0)
    hw = r.get_sample_value("foresight_cost_usd_total", {"component": "hardware"})
    en = r.get_sample_value("foresight_cost_usd_total", {"component": "energy"})
    assert hw == pytest.approx(0.02) and en == pytest.approx(3000 / 3.6e6 * 1.5 * 0.2)
    assert r.get_sample_value("foresight_cost_per_1k_tokens_usd") == pytest.approx((hw + en) / 0.5)
    assert r.get_sample_value("foresight_cost_per_decision_usd") == pytest.approx((hw + en) / 2)
    report = mon.report()
    assert report["method"] == "estimated" and report["totals"]["completion_tokens"] == 500
    assert report["inputs"]["pue"] == 1.5


async def test_tco_endpoint_and_metric_families_after_traffic(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/completions", json={"model": "scripted", "prompt": "hello", "max_tokens": 5})
    assert r.status_code == 200
    await client.post("/v1/plan", json={"prompt": "p", "algorithm": "greedy"})
    services_of(client.app).monitor.tick()  # type: ignore[attr-defined]
    tco = (await client.get("/v1/tco")).json()
    assert tco["currency"] == "USD" and tco["method"] == "estimated" and tco["totals"]["completion_tokens"] > 0
    text = (await client.get("/metrics")).text
    for family in ("foresight_requests_total", "foresight_request_latency_seconds_bucket",
                   "foresight_time_to_first_token_seconds_bucket", "foresight_queue_depth",
                   "foresight_inflight_requests", "foresight_tokens_total", "foresight_plan_decisions_total",
                   "foresight_plan_candidates_bucket", "foresight_plan_depth_bucket",
                   "foresight_plan_latency_seconds_bucket", "foresight_energy_joules_total",
                   "foresight_cost_usd_total", "foresight_cost_per_1k_tokens_usd"):
        assert family in text, family
    assert 'foresight_cost_usd_total{component="hardware"}' in text
    assert 'foresight_energy_joules_total{method="estimated"}' in text
