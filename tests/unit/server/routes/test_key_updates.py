"""Keys change in place: class, share weight, sharing group, domains, limits — the secret untouched, every change
in the key's events, the change in force at once on this replica (real SQLite store, scripted engine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.auth import principal_of
from tests.unit.server.routes.test_scopes import PROMPT, keyed_app


async def test_an_admin_changes_a_key_in_place_and_the_change_is_recorded(tmp_path: Path) -> None:
    async with keyed_app(tmp_path, {"alice": {"domains": ["billing"]}, "root": {"role": "admin"}}) as (client, auth):
        made = await client.post("/v1/keys", json={"name": "carol", "priority_class": "batch", "share_weight": 2,
                                                   "sharing_group": "reports"}, headers=auth["root"])
        assert made.status_code == 201, made.text
        info = made.json()["info"]
        assert (info["priority_class"], info["share_weight"], info["sharing_group"]) == ("batch", 2.0, "reports")
        r = await client.patch("/v1/keys/alice", json={"priority_class": "batch", "share_weight": 3,
                                                       "sharing_group": "shop", "domains": ["billing", "refunds"]},
                               headers=auth["root"])
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["priority_class"], body["share_weight"], body["sharing_group"], body["domains"]) == (
            "batch", 3.0, "shop", ["billing", "refunds"])
        # the secret is untouched, and the new domain is in force at once
        plan = await client.post("/v1/plan", json={"prompt": PROMPT, "algorithm": "greedy", "domain": "refunds"},
                                 headers=auth["alice"])
        assert plan.status_code == 200, plan.text
        back = await client.patch("/v1/keys/alice", json={"sharing_group": None, "priority_class": "interactive"},
                                  headers=auth["root"])
        assert back.json()["sharing_group"] is None and back.json()["priority_class"] == "interactive"
        same = await client.patch("/v1/keys/alice", json={"share_weight": 3}, headers=auth["root"])
        assert same.status_code == 200
        events = (await client.get("/v1/keys/events", headers=auth["root"])).json()["data"]
        updates = [e for e in events if e["action"] == "updated"]
        assert len(updates) == 2  # nothing changed, nothing recorded
        first = updates[-1]
        assert first["actor"] == "root" and first["key_name"] == "alice"
        assert first["detail"]["priority_class"] == {"from": "interactive", "to": "batch"}
        assert first["detail"]["domains"] == {"from": ["billing"], "to": ["billing", "refunds"]}
        assert updates[0]["detail"]["sharing_group"] == {"from": "shop", "to": None}
        listed = {k["name"]: k for k in (await client.get("/v1/keys", headers=auth["root"])).json()["data"]}
        assert listed["alice"]["share_weight"] == 3.0 and listed["carol"]["priority_class"] == "batch"


@pytest.mark.parametrize(("who", "name", "body", "status", "says"), [
    ("alice", "alice", {"share_weight": 2}, 403, "admin"),
    ("root", "nobody", {"share_weight": 2}, 404, "no active key named 'nobody'"),
    ("root", "alice", {}, 400, "nothing to change"),
    ("root", "alice", {"priority_class": "urgent"}, 400, "priority_class"),
    ("root", "alice", {"share_weight": 0}, 400, "share_weight"),
    ("root", "alice", {"share_weight": None}, 400, "share_weight cannot be null"),
    ("root", "alice", {"role": "admin"}, 400, "role"),
    ("root", "alice", {"sharing_group": "a b"}, 400, "sharing_group"),
])
async def test_bad_updates_are_4xx_naming_the_problem(tmp_path: Path, who: str, name: str, body: dict, status: int,
                                                      says: str) -> None:
    async with keyed_app(tmp_path, {"alice": {}, "root": {"role": "admin"}}) as (client, auth):
        r = await client.patch(f"/v1/keys/{name}", json=body, headers=auth[who])
        assert r.status_code == status, r.text
        assert says in r.text


async def test_a_revoked_key_cannot_be_updated(tmp_path: Path) -> None:
    async with keyed_app(tmp_path, {"alice": {}, "root": {"role": "admin"}}) as (client, auth):
        assert (await client.delete("/v1/keys/alice", headers=auth["root"])).status_code == 200
        r = await client.patch("/v1/keys/alice", json={"share_weight": 2}, headers=auth["root"])
        assert r.status_code == 404


def test_a_keys_app_is_its_sharing_group_else_its_name() -> None:
    import datetime as dt

    from server.store import KeyRecord

    now = dt.datetime.now(dt.UTC)
    alone = KeyRecord("alice", "fsk-abcd", now, None, None, None)
    grouped = KeyRecord("bob", "fsk-efgh", now, None, None, None, priority_class="batch", share_weight=2.5,
                        sharing_group="reports")
    assert (alone.app, grouped.app) == ("alice", "reports")
    p = principal_of(grouped)
    assert (p.app, p.priority_class, p.share_weight) == ("reports", "batch", 2.5)
