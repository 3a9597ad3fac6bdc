"""A prefix cache per app: every engine call carries a salt derived on the server from the caller's app (its key's
sharing group, else its name) — chat, completions, responses and each call of a plan — so app B, sending app A's
prompt, is told 0 cached tokens, while A's own repeat is served from the cache (the positive control). A client's
own ``cache_salt`` is ignored. Scripted engine whose prefix cache keeps blocks per salt, as vLLM's does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.scripted import ScriptedEngine
from tests.unit.server.conftest import running_app
from tests.unit.server.test_auth import make_key

LONG = "<information>" + "history " * 40 + "x=5 target=40 steps=6</information>\n"
BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": LONG}], "max_tokens": 8}),
    "completions": ("/v1/completions", {"prompt": LONG, "max_tokens": 8}),
    "responses": ("/v1/responses", {"input": LONG, "max_output_tokens": 8}),
    "plan": ("/v1/plan", {"prompt": LONG, "algorithm": "best_of_n", "width": 2}),
}


def turn(prompt: str, index: int, request: object) -> str:
    return "<imaginary>x=10</imaginary>\n<confidence>50%</confidence>\n<answer>go</answer>"


def cached(body: dict[str, Any], path: str) -> int:
    usage = body["usage"]
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    return int(details.get("cached_tokens", 0))


@pytest.fixture
async def apps(tmp_path: Path) -> Any:
    store = tmp_path / "s.db"
    keys = {name: await make_key(store, name) for name in ("alpha", "beta")}
    engine = ScriptedEngine(turn, max_model_len=4096, cache_block=16)
    async with running_app(engine, store_path=str(store), auth_enabled=True, warmup=False) as client:
        yield client, {k: {"authorization": f"Bearer {v}"} for k, v in keys.items()}, engine, store


@pytest.mark.parametrize("kind", list(BODIES))
async def test_another_app_is_told_nothing_of_a_prompt_its_own_repeat_is_cached(apps: Any, kind: str) -> None:
    client, auth, engine, _ = apps
    path, body = BODIES[kind]
    first = await client.post(path, json=body, headers=auth["alpha"])
    assert first.status_code == 200, first.text
    probe = await client.post(path, json={**body, "cache_salt": "guess"}, headers=auth["beta"])
    assert probe.status_code == 200 and cached(probe.json(), path) == 0
    again = await client.post(path, json=body, headers=auth["alpha"])
    assert cached(again.json(), path) >= 16 * (len(LONG) // 16 - 1)  # the positive control: its own blocks
    salts = {r.cache_salt for r in engine.requests}
    assert None not in salts and len(salts) == 2 and "guess" not in salts  # every engine call salted, by app


async def test_keys_of_one_sharing_group_share_a_cache(apps: Any) -> None:
    client, auth, engine, store = apps
    from server.store import Store, default_url

    s = Store(default_url(store))
    await s.open()
    try:
        for name in ("alpha", "beta"):
            await s.update_key(name, {"sharing_group": "shop"})
    finally:
        await s.close()
    path, body = BODIES["completions"]
    # the verified keys are cached for auth_cache_ttl_s: a change from the command line shows after it
    client.app.state.services.keyring.forget_all()  # type: ignore[attr-defined]
    await client.post(path, json=body, headers=auth["alpha"])
    shared = await client.post(path, json=body, headers=auth["beta"])
    assert cached(shared.json(), path) > 0
    assert len({r.cache_salt for r in engine.requests}) == 1


async def test_with_auth_off_there_is_one_cache(tmp_path: Path) -> None:
    engine = ScriptedEngine(turn, max_model_len=4096, cache_block=16)
    async with running_app(engine, warmup=False) as client:
        path, body = BODIES["chat"]
        await client.post(path, json=body)
        again = await client.post(path, json=body)
        assert cached(again.json(), path) > 0 and {r.cache_salt for r in engine.requests} == {None}


def test_salts_are_per_app_and_keyed_by_the_server_secret() -> None:
    from server.auth import KeyRing, Principal

    a, b = KeyRing(None, b"s1", 1.0), KeyRing(None, b"s2", 1.0)  # type: ignore[arg-type]
    alice, grouped = Principal("alice"), Principal("bob", app="alice")
    assert a.cache_salt(alice) == a.cache_salt(grouped) != a.cache_salt(Principal("carol"))
    assert a.cache_salt(alice) != b.cache_salt(alice)  # no client can compute it without the secret
    assert a.cache_salt(Principal(None, role="admin")) is None
