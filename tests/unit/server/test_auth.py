"""API keys, rate limits, CORS and body limits in-process (the real-server versions: tests/integration)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from engine.scripted import ScriptedEngine
from server.auth import KeyRing, Principal, display_prefix, generate_key, hash_key, load_secret
from server.store import Store, default_url
from tests.unit.server.conftest import running_app, settings


async def make_key(store_path: Path, name: str, **limits: int) -> str:
    s = settings(store_path=str(store_path), auth_enabled=True)
    secret = load_secret(s.auth_secret, s.secret_path)
    key = generate_key()
    store = Store(default_url(store_path))
    await store.open()
    await store.create_key(name, display_prefix(key), hash_key(key, secret), **limits)
    await store.close()
    return key


def test_secret_file_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    first = load_secret(None, path)
    assert load_secret(None, path) == first and len(first) == 64
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_secret("given-secret-0123456789", path) == b"given-secret-0123456789"


async def test_keys_guard_v1_but_not_probes(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    key = await make_key(store, "app")
    async with running_app(ScriptedEngine(), store_path=str(store), auth_enabled=True) as client:
        assert (await client.get("/v1/models")).status_code == 401
        wrong = await client.get("/v1/models", headers={"authorization": "Bearer " + key[:-1]})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
        basic = await client.get("/v1/models", headers={"authorization": f"Basic {key}"})
        assert basic.status_code == 401
        assert (await client.get("/v1/models", headers={"authorization": f"Bearer {key}"})).status_code == 200
        for path in ("/health", "/ready", "/metrics"):
            assert (await client.get(path)).status_code == 200, path
    async with running_app(ScriptedEngine(), store_path=str(store), auth_enabled=True,
                           metrics_require_key=True) as client:
        assert (await client.get("/metrics")).status_code == 401
        # an app key may not read every key's usage there (tests/unit/server/test_scopes.py: an admin may)
        assert (await client.get("/metrics", headers={"authorization": f"Bearer {key}"})).status_code == 403


async def test_token_rate_limit_charges_generated_tokens(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    key = await make_key(store, "tokens", tokens_per_minute=10)
    auth = {"authorization": f"Bearer {key}"}
    async with running_app(ScriptedEngine(), store_path=str(store), auth_enabled=True) as client:
        body = {"model": "scripted", "prompt": "hello", "max_tokens": 8}
        assert (await client.post("/v1/completions", json=body, headers=auth)).status_code == 200
        limited = await client.post("/v1/completions", json=body, headers=auth)  # 5 prompt + 8 tokens > 10
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


async def test_revoked_key_is_refused_after_the_cache(tmp_path: Path) -> None:
    store_path = tmp_path / "s.db"
    key = await make_key(store_path, "temp")
    s = settings(store_path=str(store_path), auth_enabled=True)
    now = [0.0]
    store = Store(default_url(store_path))
    ring = KeyRing(store, load_secret(None, s.secret_path), ttl_s=10, clock=lambda: now[0])
    assert (await ring.verify(key)) == Principal("temp", domains=("temp",), app="temp")  # its own domain and app
    await store.revoke_key("temp")
    assert (await ring.verify(key)) == Principal("temp", domains=("temp",), app="temp")  # cached
    now[0] = 11.0
    assert await ring.verify(key) is None
    await store.close()


async def test_cors_off_by_default_and_on_when_configured() -> None:
    preflight = {"origin": "https://app.example", "access-control-request-method": "POST"}
    async with running_app(ScriptedEngine()) as client:
        r = await client.options("/v1/completions", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
    async with running_app(ScriptedEngine(), cors_allow_origins=["https://app.example"]) as client:
        r = await client.options("/v1/completions", headers=preflight)
        assert r.headers["access-control-allow-origin"] == "https://app.example"


async def test_chunked_body_over_the_limit_is_a_400(client: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b" " * 65536

    r = await client.post("/v1/completions", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "request_too_large"


def test_safe_defaults() -> None:
    s = settings(auth_enabled=True)
    assert s.host == "127.0.0.1" and s.cors_allow_origins == [] and s.auth_enabled


@pytest.mark.parametrize("bad", ["short"])
def test_secret_values_are_never_echoed(bad: str) -> None:
    from server.config import load_settings
    from server.errors import SettingsError

    with pytest.raises(SettingsError) as info:
        load_settings(None, model=str(settings().model), auth_secret=bad)
    assert bad not in str(info.value) and "auth_secret" in str(info.value)
