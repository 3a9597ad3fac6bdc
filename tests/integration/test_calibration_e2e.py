"""End to end: plans on the reference model, outcomes from the simulator, calibration on held-out plans.

The reference model's confidence is calibrated for its training world (stalls 15% of the time); here
the app's world stalls 45% of the time, so the model is over-confident there, as a model deployed
into a world that differs from its training is. The server must learn that from the outcomes the app
reports and give the planner a better-calibrated confidence for later plans — measured on plans made
after the map was fitted."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from planner.calibration_math import expected_calibration_error
from reference import data
from reference import numberreach as env
from tests.conftest import REPO
from tests.integration.server_process import ServerProcess

pytestmark = pytest.mark.integration
DOMAIN = "numberreach-e2e"
WORLD_STALL_PROB = 0.45


def plan_and_report(server: ServerProcess, state: env.State, seed: int) -> tuple[dict, bool]:
    body = {"prompt": data.prompt_for(state), "algorithm": "greedy", "domain": DOMAIN, "seed": seed}
    r = httpx.post(f"{server.url}/v1/plan", json=body, timeout=120)
    assert r.status_code == 200, r.text
    plan = r.json()
    ops = [op for op, _ in data.parse_rollout(plan["rollout"] or "")]
    success = bool(ops) and env.simulate_plan(state, ops, random.Random(seed), WORLD_STALL_PROB)
    out = httpx.post(f"{server.url}/v1/outcomes", json={"plan_id": plan["plan_id"], "success": success}, timeout=30)
    assert out.status_code == 200, out.text
    return plan, success


def run_batch(server: ServerProcess, states: list[env.State], seed0: int) -> list[tuple[dict, bool]]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda i: plan_and_report(server, states[i], seed0 + i), range(len(states))))


def test_calibration_lowers_ece_on_held_out_plans(server: ServerProcess, tmp_path: Path) -> None:
    rng = random.Random(11)
    states_iter = data.visited_states(rng, heldout=True)
    states = [next(states_iter) for _ in range(240)]
    run_batch(server, states[:120], 0)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the refit runs in the background
        cal = httpx.get(f"{server.url}/v1/calibration", params={"domain": DOMAIN}, timeout=30).json()
        if cal["domains"][0]["map"]["outcomes"] >= 100:
            break
        time.sleep(0.5)
    assert cal["domains"][0]["map"]["kind"] == "platt", cal
    later = run_batch(server, states[120:], 1000)
    raw = [p["confidence"]["raw"] for p, _ in later]
    calibrated = [p["confidence"]["calibrated"] for p, _ in later]
    outcomes = [y for _, y in later]
    assert all(c is not None for c in raw + calibrated)
    assert any(abs(a - b) > 1e-6 for a, b in zip(raw, calibrated, strict=True))
    ece_raw = expected_calibration_error(raw, outcomes)
    ece_cal = expected_calibration_error(calibrated, outcomes)
    assert ece_cal < ece_raw, (ece_raw, ece_cal)

    png = tmp_path / "reliability.png"
    report = subprocess.run(
        [sys.executable, "-m", "foresight", "calibration", "report", "--url", server.url, "--domain", DOMAIN,
         "--out", str(png)], cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert report.returncode == 0, report.stderr
    assert f"domain {DOMAIN}: 240 outcomes" in report.stdout
    assert "calibrated" in report.stdout and png.stat().st_size > 5000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
    brier = [s for family in text_string_to_metric_families(metrics) if family.name == "foresight_confidence_brier"
             for s in family.samples if s.labels.get("domain") == DOMAIN and s.labels["confidence"] == "calibrated"]
    assert [s.labels["model"] for s in brier] == [later[0][0]["model"]], brier  # per (model, domain)
