"""Keys with roles and domains, in-process with a real SQLite store: an app key plans only in its domains,
reports only on its own plans and reads only its domains' calibration — every attempt across apps is a 403
or a 404 that looks like an unknown plan or domain, and leaves the victim's calibration as it was; an admin
sees all and manages keys over HTTP; expired, rotated and revoked keys behave."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.scripted import ScriptedEngine
from tests.unit.server.conftest import running_app
from tests.unit.server.test_auth import make_key

PROMPT = "<information>x=5 target=40 steps=6</information>\n"


def turn(prompt: str, index: int, request: object) -> str:
    return ('<imaginary>x=10 then 40</imaginary>\n<confidence>90%</confidence>\n<think>go</think>\n'
            '<tool_call>{"name": "apply", "arguments": {"op": "*2"}}</tool_call>')


KEYS: dict[str, dict[str, Any]] = {"alice": {}, "bob": {}, "root": {"role": "admin"}}  # bob: its own domain


@asynccontextmanager
async def keyed_app(tmp_path: Path, keys: dict[str, dict[str, Any]] = KEYS,
                    **overrides: object) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, dict[str, str]]]]:
    """The app on a real SQLite store with ``keys`` (name → make_key's options), and each key's auth header."""
    store = tmp_path / "s.db"
    auth = {name: {"authorization": f"Bearer {await make_key(store, name, **opts)}"} for name, opts in keys.items()}
    async with running_app(ScriptedEngine(turn), store_path=str(store), auth_enabled=True, **overrides) as client:
        yield client, auth


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, dict[str, str]]]]:
    async with keyed_app(tmp_path, {**KEYS, "alice": {"domains": ["billing"]}},
                         calibration_refit_interval_s=0.0) as app:
        yield app


async def _plan(client: httpx.AsyncClient, auth: dict[str, str], **kw: object) -> httpx.Response:
    return await client.post("/v1/plan", json={"prompt": PROMPT, "algorithm": "greedy", **kw}, headers=auth)


async def test_a_plan_goes_to_the_keys_domain_and_nowhere_else(app) -> None:  # type: ignore[no-untyped-def]
    client, auth = app
    mine = await _plan(client, auth["alice"])
    assert mine.status_code == 200 and mine.json()["domain"] == "billing"
    assert (await _plan(client, auth["bob"])).json()["domain"] == "bob"
    other = await _plan(client, auth["alice"], domain="bob")
    assert other.status_code == 403 and other.json()["error"]["code"] == "domain_not_allowed"
    assert (await _plan(client, auth["root"], domain="bob")).status_code == 200  # admin: any domain
    assert (await _plan(client, auth["root"])).json()["domain"] == "default"  # and the default one by default


async def test_cross_app_outcomes_and_calibration_look_unknown(app) -> None:  # type: ignore[no-untyped-def]
    client, auth = app
    bobs = [(await _plan(client, auth["bob"])).json()["plan_id"] for _ in range(3)]
    for plan_id in bobs[:2]:
        r = await client.post("/v1/outcomes", json={"plan_id": plan_id, "success": True}, headers=auth["bob"])
        assert r.status_code == 200, r.text
    for _ in range(200):  # the refit after bob's outcomes runs in the background: let it land first
        before = (await client.get("/v1/calibration", params={"domain": "bob"}, headers=auth["bob"])).json()
        if before["domains"][0]["map"]["outcomes"] == 2:
            break
        await asyncio.sleep(0.01)

    attack = await client.post("/v1/outcomes", json={"plan_id": bobs[2], "success": False}, headers=auth["alice"])
    unknown = await client.post("/v1/outcomes", json={"plan_id": "plan-nope", "success": False},
                                headers=auth["alice"])
    assert attack.status_code == unknown.status_code == 404
    assert attack.json()["error"]["message"].replace(bobs[2], "X") == \
        unknown.json()["error"]["message"].replace("plan-nope", "X")  # the same answer as an unknown plan
    peek = await client.get("/v1/calibration", params={"domain": "bob"}, headers=auth["alice"])
    nowhere = await client.get("/v1/calibration", params={"domain": "nowhere"}, headers=auth["alice"])
    assert peek.status_code == nowhere.status_code == 404
    assert [d["domain"] for d in (await client.get("/v1/calibration", headers=auth["alice"])).json()["domains"]] \
        == []  # alice's listing holds none of bob's domains

    after = (await client.get("/v1/calibration", params={"domain": "bob"}, headers=auth["bob"])).json()
    assert after == before and after["domains"][0]["outcomes"] == 2  # the victim's calibration is untouched
    assert [d["domain"] for d in (await client.get("/v1/calibration", headers=auth["root"])).json()["domains"]] \
        == ["bob"]
    admin = await client.post("/v1/outcomes", json={"plan_id": bobs[2], "success": True}, headers=auth["root"])
    assert admin.status_code == 200


async def test_admins_manage_keys_over_http_and_apps_may_not(app) -> None:  # type: ignore[no-untyped-def]
    client, auth = app
    assert (await client.get("/v1/keys", headers=auth["alice"])).json()["error"]["code"] == "admin_required"
    body = {"name": "carol", "domains": ["triage", "ops"], "tokens_per_minute": 10**6}
    made = await client.post("/v1/keys", json=body, headers=auth["root"])
    assert made.status_code == 201, made.text
    carol = {"authorization": f"Bearer {made.json()['key']}"}
    assert made.json()["info"]["domains"] == ["triage", "ops"] and made.json()["info"]["role"] == "app"
    # two domains: a plan must name one
    assert (await _plan(client, carol)).json()["error"]["code"] == "domain_not_allowed"
    assert (await _plan(client, carol, domain="ops")).status_code == 200
    assert (await client.post("/v1/keys", json={"name": "carol"}, headers=auth["root"])).status_code == 409
    assert (await client.post("/v1/keys", json={"name": "x", "domains": ["a b"]}, headers=auth["root"])).status_code \
        == 400

    rotated = await client.post("/v1/keys/carol/rotate", json={"grace_s": 0}, headers=auth["root"])
    assert rotated.status_code == 200
    assert (await client.get("/v1/models", headers=carol)).status_code == 401  # the old secret: no grace
    fresh = {"authorization": f"Bearer {rotated.json()['key']}"}
    assert (await _plan(client, fresh, domain="ops")).status_code == 200  # same name and scopes
    revoked = await client.delete("/v1/keys/carol", headers=auth["root"])
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert (await client.get("/v1/models", headers=fresh)).status_code == 401
    assert (await client.delete("/v1/keys/carol", headers=auth["root"])).status_code == 404
    events = (await client.get("/v1/keys/events", headers=auth["root"])).json()["data"]
    assert [(e["action"], e["key_name"], e["actor"]) for e in events[:3]] == [
        ("revoked", "carol", "root"), ("rotated", "carol", "root"), ("created", "carol", "root")]


async def test_a_rotated_key_keeps_working_through_its_grace_and_expired_keys_stop(app) -> None:  # type: ignore[no-untyped-def]
    client, auth = app
    made = await client.post("/v1/keys", json={"name": "dave"}, headers=auth["root"])
    old = {"authorization": f"Bearer {made.json()['key']}"}
    await client.post("/v1/keys/dave/rotate", json={"grace_s": 600}, headers=auth["root"])
    assert (await client.get("/v1/models", headers=old)).status_code == 200  # within its grace
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    gone = await client.post("/v1/keys", json={"name": "erin", "expires_at": past}, headers=auth["root"])
    erin = {"authorization": f"Bearer {gone.json()['key']}"}
    assert (await client.get("/v1/models", headers=erin)).status_code == 401


async def test_start_up_warns_about_each_app_key_with_every_domain(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "s.db"
    await make_key(store, "legacy", domains=["*"])  # type: ignore[arg-type]  # as the migration leaves old keys
    await make_key(store, "narrow")
    with caplog.at_level("WARNING", logger="foresight.app"):
        async with running_app(ScriptedEngine(turn), store_path=str(store), auth_enabled=True):
            for _ in range(200):
                if any("may use every domain" in r.getMessage() for r in caplog.records):
                    break
                await asyncio.sleep(0.01)
    warned = [r.getMessage() for r in caplog.records if "may use every domain" in r.getMessage()]
    assert len(warned) == 1 and "'legacy'" in warned[0]


async def test_metrics_that_need_a_key_need_an_admin_key(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    app_key, admin_key = await make_key(store, "app"), await make_key(store, "ops", role="admin")  # type: ignore[arg-type]
    async with running_app(ScriptedEngine(turn), store_path=str(store), auth_enabled=True,
                           metrics_require_key=True) as client:
        as_app = await client.get("/metrics", headers={"authorization": f"Bearer {app_key}"})
        as_admin = await client.get("/metrics", headers={"authorization": f"Bearer {admin_key}"})
    assert as_app.status_code == 403 and as_admin.status_code == 200  # they name every key and its usage
