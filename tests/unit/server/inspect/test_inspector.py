"""The plan inspector in-process: a key POSTed once becomes a signed, HttpOnly, SameSite=Strict cookie scoped
to /inspect; pages carry a strict content-security policy; model text is escaped; an app key sees only its
own plans."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from engine.scripted import ScriptedEngine
from server.inspect.session import SessionSigner
from tests.unit.server.conftest import running_app
from tests.unit.server.test_auth import make_key

EVIL = "<script>alert('rollout')</script>"


def evil_turn(prompt: str, index: int, request: object) -> str:
    return (f"<imaginary>x=10 {EVIL} then 40</imaginary>\n<confidence>90%</confidence>\n<think>go</think>\n"
            '<tool_call>{"name": "apply", "arguments": {"op": "*2"}}</tool_call>')


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    store = tmp_path / "s.db"
    keys = {"alice": await make_key(store, "alice"), "bob": await make_key(store, "bob")}
    async with running_app(ScriptedEngine(evil_turn), store_path=str(store), auth_enabled=True) as client:
        yield client, keys


async def _login(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post("/inspect/login", data={"key": key})


async def test_login_sets_a_strict_cookie_and_never_echoes_the_key(app) -> None:  # type: ignore[no-untyped-def]
    client, keys = app
    page = await client.get("/inspect")
    assert page.status_code == 200 and 'name="key"' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    bad = await _login(client, "fsk-wrong")
    assert bad.status_code == 401 and "not valid" in bad.text
    r = await _login(client, keys["alice"])
    assert r.status_code == 303 and r.headers["location"] == "/inspect"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/inspect" in cookie
    assert keys["alice"] not in cookie and keys["alice"] not in r.text


async def test_a_plan_page_escapes_model_text_and_shows_only_ones_own(app) -> None:  # type: ignore[no-untyped-def]
    client, keys = app
    plan = (await client.post("/v1/plan", json={"prompt": "<information>x=5 target=40 steps=6</information>\n",
                                                "algorithm": "greedy"},
                              headers={"authorization": f"Bearer {keys['alice']}"})).json()
    await client.post("/v1/outcomes", json={"plan_id": plan["plan_id"], "success": True},
                      headers={"authorization": f"Bearer {keys['alice']}"})
    client.cookies.clear()
    await _login(client, keys["alice"])
    listing = await client.get("/inspect")
    assert plan["plan_id"][:18] in listing.text and "success" in listing.text
    page = await client.get(f"/inspect/plans/{plan['plan_id']}")
    assert page.status_code == 200
    assert EVIL not in page.text and "&lt;script&gt;alert(&#39;rollout&#39;)&lt;/script&gt;" in page.text
    assert "committed" in page.text and "<svg" in page.text  # the tree and the domain's reliability diagram
    assert not re.search(r"<script", page.text, re.I)  # no script at all on the page

    client.cookies.clear()
    await _login(client, keys["bob"])
    assert (await client.get(f"/inspect/plans/{plan['plan_id']}")).status_code == 404
    assert plan["plan_id"][:18] not in (await client.get("/inspect")).text


def test_a_cookie_is_signed_and_short_lived() -> None:
    now = [1000.0]
    signer = SessionSigner(b"secret", clock=lambda: now[0], ttl_s=60)
    cookie = signer.issue("alice")
    assert signer.read(cookie) == ("alice", "")
    other = signer.issue("bob").split(".")[0]
    assert signer.read(".".join([other, *cookie.split(".")[1:]])) is None  # another name, same signature: refused
    assert SessionSigner(b"other", clock=lambda: now[0]).read(cookie) is None
    now[0] += 61
    assert signer.read(cookie) is None


async def test_bad_cookies_cross_site_posts_and_rotation_end_at_the_login(app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from server.auth import display_prefix, generate_key, hash_key, load_secret
    from server.store import Store, default_url

    client, keys = app
    odd = await client.get("/inspect", headers=[(b"cookie", "foresight_inspect=a.b.\u00e9".encode("latin-1"))])
    assert odd.status_code == 200 and 'name="key"' in odd.text  # a cookie that is not ours: the login, no 500
    forged = await client.post("/inspect/login", data={"key": keys["alice"]},
                               headers={"sec-fetch-site": "cross-site"})
    assert forged.status_code == 403 and "set-cookie" not in forged.headers  # login CSRF
    assert (await client.post("/inspect/logout", headers={"origin": "https://evil.example"})).status_code == 403
    await _login(client, keys["alice"])
    assert 'name="key"' not in (await client.get("/inspect")).text  # logged in
    store = Store(default_url(tmp_path / "s.db"))  # the fixture's store and secret
    await store.open()
    new = generate_key()
    secret = load_secret(None, tmp_path / "auth_secret")
    await store.rotate_key("alice", display_prefix(new), hash_key(new, secret), grace_s=3600)
    await store.close()
    assert 'name="key"' in (await client.get("/inspect")).text  # the rotation ended the session
