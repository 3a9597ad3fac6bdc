"""/v1/outcomes and /v1/calibration with a scripted, over-confident model and a real SQLite store."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest

from engine.base import GenerationRequest
from engine.scripted import ScriptedEngine
from server.app import services_of
from tests.unit.server.conftest import running_app

TRUE_RATE = 0.3  # the scripted model says 90%, but its plans succeed 30% of the time


def overconfident(prompt: str, index: int, request: GenerationRequest) -> str:
    return ("<imaginary>x=21 then x=23</imaginary>\n<confidence>90%</confidence>\n"
            "<think>t</think>\n<answer>go</answer>")


async def plan_ids(client: httpx.AsyncClient, n: int, domain: str = "shop") -> list[dict]:
    out = []
    for _ in range(n):
        r = await client.post("/v1/plan", json={"prompt": "obs", "algorithm": "greedy", "domain": domain})
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


async def test_outcome_lifecycle_404_409_replace(tmp_path: Path) -> None:
    async with running_app(ScriptedEngine(overconfident), store_path=str(tmp_path / "s.db")) as client:
        [p] = await plan_ids(client, 1)
        r = await client.post("/v1/outcomes", json={"plan_id": p["plan_id"], "success": True,
                                                    "observation": "<information>x=21</information>"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["domain"] == "shop" and body["success"] and not body["replaced"]
        assert 0 < body["fidelity"] <= 1
        again = await client.post("/v1/outcomes", json={"plan_id": p["plan_id"], "success": False})
        assert again.status_code == 409 and again.json()["error"]["code"] == "outcome_exists"
        replaced = await client.post("/v1/outcomes", json={"plan_id": p["plan_id"], "success": False,
                                                           "replace": True})
        assert replaced.status_code == 200 and replaced.json()["replaced"]
        missing = await client.post("/v1/outcomes", json={"plan_id": "plan-nope", "success": True})
        assert missing.status_code == 404 and missing.json()["error"]["param"] == "plan_id"


@pytest.mark.parametrize(("body", "field"), [
    ({"success": True}, "plan_id"),
    ({"plan_id": "p"}, "success"),
    ({"plan_id": "p", "success": "maybe"}, "success"),
    ({"plan_id": "p", "success": True, "colour": "red"}, "colour"),
    ({"plan_id": "", "success": True}, "plan_id"),
])
async def test_bad_outcomes_are_400_naming_the_field(client: httpx.AsyncClient, body: dict, field: str) -> None:
    r = await client.post("/v1/outcomes", json=body)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == field


async def test_calibration_learns_the_overconfidence_and_survives_restart(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    rng = random.Random(0)
    opts = {"store_path": store, "calibration_min_platt": 20, "calibration_refit_interval_s": 0}
    async with running_app(ScriptedEngine(overconfident), **opts) as client:
        for p in await plan_ids(client, 60):
            r = await client.post("/v1/outcomes", json={"plan_id": p["plan_id"], "success": rng.random() < TRUE_RATE})
            assert r.status_code == 200
        await services_of(client.app).calibration.settle()  # type: ignore[attr-defined]
        [after] = await plan_ids(client, 1)
        assert after["confidence"]["raw"] == 0.9
        assert abs(after["confidence"]["calibrated"] - TRUE_RATE) < 0.12
        report = (await client.get("/v1/calibration", params={"domain": "shop"})).json()
        [d] = report["domains"]
        assert d["outcomes"] == 60 and d["map"]["kind"] == "platt" and d["map"]["outcomes"] == 60
        assert d["raw"]["ece"] > 0.4 and len(d["raw"]["bins"]) == 15
        metrics = (await client.get("/metrics")).text
        assert 'foresight_confidence_ece{confidence="raw",domain="shop",model="scripted"}' in metrics
        assert 'foresight_outcomes_total{domain="shop",model="scripted",result="failure"}' in metrics
        assert 'foresight_calibration_outcomes{domain="shop",model="scripted"} 60.0' in metrics
        # the other domain is untouched by this one's map
        [other] = await plan_ids(client, 1, domain="elsewhere")
        assert other["confidence"]["calibrated"] == 0.9
    async with running_app(ScriptedEngine(overconfident), **opts) as client:
        await services_of(client.app).store_loader  # type: ignore[attr-defined]
        [p] = await plan_ids(client, 1)
        assert abs(p["confidence"]["calibrated"] - after["confidence"]["calibrated"]) < 1e-9
        assert (await client.get("/v1/calibration")).json()["domains"][0]["outcomes"] == 60


async def test_a_domain_whose_plans_all_failed_is_calibrated_down(tmp_path: Path) -> None:
    """40 plans at raw 0.99, every one reported a failure: the map is fitted (Platt's smoothed targets),
    not left at identity because the outcomes hold one class."""
    def sure(prompt: str, index: int, request: GenerationRequest) -> str:
        return overconfident(prompt, index, request).replace("90%", "99%")

    opts = {"store_path": str(tmp_path / "s.db"), "calibration_min_platt": 30, "calibration_refit_interval_s": 0}
    async with running_app(ScriptedEngine(sure), **opts) as client:
        for p in await plan_ids(client, 40):
            r = await client.post("/v1/outcomes", json={"plan_id": p["plan_id"], "success": False})
            assert r.status_code == 200
        await services_of(client.app).calibration.settle()  # type: ignore[attr-defined]
        [after] = await plan_ids(client, 1)
        assert after["confidence"]["raw"] == 0.99
        assert after["confidence"]["calibrated"] == pytest.approx(1 / 42, abs=0.01)
        [d] = (await client.get("/v1/calibration", params={"domain": "shop"})).json()["domains"]
        assert d["map"]["kind"] == "platt" and d["raw"]["ece"] == pytest.approx(0.99)


async def test_store_down_plans_served_outcomes_503() -> None:
    async with running_app(ScriptedEngine(overconfident), database_url="postgresql://x@127.0.0.1:1/none") as client:
        [p] = await plan_ids(client, 1)
        r = await client.post("/v1/outcomes", json={"plan_id": p["plan_id"], "success": True})
        assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
        assert r.headers["Retry-After"]
        assert (await client.get("/v1/calibration")).status_code == 503
        assert (await client.get("/health")).status_code == 200
        assert "foresight_store_errors_total" in (await client.get("/metrics")).text


async def test_maps_load_even_when_the_key_ring_opened_the_shared_store_first(tmp_path: Path) -> None:
    from server.metrics import Metrics
    from server.services.calibration import CalibrationService
    from server.store import Store, default_url

    url = default_url(tmp_path / "s.db")
    seed = Store(url)
    await seed.open()
    await seed.save_map("m", "shop", {"kind": "platt", "a": 1.0, "b": -2.0}, 40)
    await seed.close()
    shared = Store(url)
    await shared.open()  # as an authenticated request arriving during start-up would
    service = CalibrationService(shared, "m", Metrics())
    await service.start()
    assert service.map_for("shop") is not None and service.map_for("shop").kind == "platt"  # type: ignore[union-attr]
    await service.close()
