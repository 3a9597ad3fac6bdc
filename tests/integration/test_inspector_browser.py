"""The plan inspector in a real browser: Debian's Chromium driven by Playwright (pointed at that binary;
nothing downloaded). Log in with a key, open a plan, see its tree, its outcome and the rollout's script as
text. The app runs on a scripted engine under uvicorn: the page is what is tested, not the model.

``FORESIGHT_UPDATE_SCREENSHOTS=1`` also writes the screenshot the docs show (docs/images/inspector.png)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from engine.scripted import ScriptedEngine
from server.app import create_app
from tests.conftest import REPO
from tests.unit.server.conftest import settings
from tests.unit.server.test_auth import make_key

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EVIL = "<script>alert('rollout')</script>"
OPS = ("*2", "+2", "*3")


def script(prompt: str, index: int, request: object) -> str:
    seed = getattr(request, "seed", None) or 0
    op, conf = OPS[index % 3], 25 + (seed * 17 + index * 29) % 70  # confidences that differ from plan to plan
    return (f"<imaginary>x=5 {op} → next; {EVIL if index % 3 == 2 else 'then on to 40'}</imaginary>\n"
            f"<confidence>{conf}%</confidence>\n<think>try {op}</think>\n"
            f'<tool_call>{{"name": "apply", "arguments": {{"op": "{op}"}}}}</tool_call>')


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    store = tmp_path_factory.mktemp("inspect") / "s.db"
    key = asyncio.run(make_key(store, "billing-app"))
    app = create_app(settings(store_path=str(store), auth_enabled=True, calibration_refit_interval_s=0.0),
                     ScriptedEngine(script))
    port = _port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    yield url, key
    server.should_exit = True
    thread.join(10)


def _plans(url: str, key: str) -> str:
    auth = {"authorization": f"Bearer {key}"}
    body = {"prompt": "<information>x=5 target=40 steps=6</information>\n", "algorithm": "best_of_n", "width": 3,
            "temperature": 1.0}
    shown = ""
    for i in range(12):  # outcomes for the domain's reliability diagram; the last plan is the one shown
        plan = httpx.post(f"{url}/v1/plan", json={**body, "seed": i}, headers=auth, timeout=30).json()
        shown = plan["plan_id"]
        if i < 11:
            httpx.post(f"{url}/v1/outcomes", json={"plan_id": shown, "success": i % 3 != 0}, headers=auth, timeout=30)
    httpx.post(f"{url}/v1/outcomes", headers=auth, timeout=30, json={
        "plan_id": shown, "success": True, "observation": "<information>x=10 target=40 steps=5</information>"})
    return shown


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed "
                                                         "(scripts/test-services.sh installs it as root)")
def test_log_in_open_a_plan_see_its_tree_outcome_and_escaped_script(site: tuple[str, str], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    url, key = site
    plan_id = _plans(url, key)
    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{url}/inspect")
        page.fill("#key", key)
        page.click("button[type=submit]")
        page.wait_for_selector("table")
        assert key not in page.url and page.locator("tbody tr").count() == 12
        page.click(f"a[href='/inspect/plans/{plan_id}']")
        page.wait_for_selector("ul.tree")
        assert page.locator("li.node").count() == 3 and page.locator("li.chosen").count() == 1
        assert page.locator("dd .badge.ok").inner_text() == "success"
        assert any(EVIL in t for t in page.locator(".rollout").all_inner_texts())  # shown as text
        assert page.locator("svg circle").count() >= 2  # the reliability diagram's bins
        shot = tmp_path / "inspector.png"
        page.screenshot(path=str(shot), full_page=True)
        cookies = page.context.cookies()
        browser.close()
    assert dialogs == []  # the rollout's script never ran
    [cookie] = cookies
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/inspect"
    assert shot.stat().st_size > 10_000
    if os.environ.get("FORESIGHT_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(shot, REPO / "docs" / "images" / "inspector.png")
