"""Client disconnects abort generation; SIGTERM drains in-flight streams and exits 0."""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.integration.conftest import served_model
from tests.integration.server_process import ServerProcess, start_server

pytestmark = pytest.mark.integration
PROMPT = "<information>x=5 target=40 steps=6</information>\n"
LONG = {"prompt": PROMPT, "max_tokens": 190, "n": 8, "ignore_eos": True, "temperature": 1.0}
FULL_TOKENS = 190 * 8
# without a stream the server notices a disconnect by polling (~0.5 s after the client left): give it
# a request that takes several times that, even on a busy 2-core machine (240 + prompt < 256 context)
LONGER = {**LONG, "max_tokens": 240, "n": 16}
LONGER_TOKENS = 240 * 16


def generated_tokens(server: ServerProcess) -> float:
    """vLLM's own count of generated tokens (an aborted request stops adding to it)."""
    text = httpx.get(f"{server.url}/metrics").text
    pattern = r"^vllm:generation_tokens_total\{[^}]*\} ([0-9.e+]+)$"
    return sum(float(m.group(1)) for m in re.finditer(pattern, text, re.M))


def wait_idle(server: ServerProcess, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    unfinished = -1
    while time.monotonic() < deadline:
        unfinished = httpx.get(f"{server.url}/health").json()["unfinished_requests"]
        if unfinished == 0:
            return 0
        time.sleep(0.1)
    return unfinished


def test_streaming_client_disconnect_aborts(server: ServerProcess) -> None:
    before = generated_tokens(server)
    with httpx.Client(timeout=30) as c, c.stream("POST", f"{server.url}/v1/completions",
                                                 json={**LONG, "stream": True}) as r:
        lines = r.iter_lines()
        first = next(line for line in lines if line.startswith("data: {"))
        assert first
    # connection closed after one chunk
    assert wait_idle(server) == 0
    time.sleep(1)
    assert generated_tokens(server) - before < FULL_TOKENS  # stopped early: aborted


# the same load as chat messages (the reference model's template renders the observation as it is)
LONG_CHAT = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 200, "n": 16, "ignore_eos": True,
             "temperature": 1.0}


@pytest.mark.parametrize(("path", "body", "full"), [
    ("/v1/completions", LONGER, LONGER_TOKENS),
    ("/v1/chat/completions", LONG_CHAT, 200 * 16),
])
def test_non_streaming_client_disconnect_aborts(server: ServerProcess, path: str, body: dict, full: int) -> None:
    """Completions and chat (like plans, below) stop their engine work when the client goes away
    (``with_cancellation`` waits on the connection's ``http.disconnect``; the Responses API's is tested on
    every generating route in tests/unit/server/routes/test_disconnect.py — one real sequence of its is over
    before a client could leave)."""
    before = generated_tokens(server)
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{server.url}{path}", json=body, timeout=0.3)
    assert wait_idle(server) == 0
    time.sleep(1)
    assert generated_tokens(server) - before < full


# a plan that runs its whole budget (commit_threshold 1 is never met): a few engine calls of 16 turns
SLOW_PLAN = {"prompt": PROMPT, "algorithm": "lookahead", "width": 16, "branch": 4, "commit_threshold": 1.0,
             "seed": 3, "lookahead_context": "observation",
             "budget": {"max_depth": 3, "max_candidates": 64, "max_tokens": 30000, "deadline_s": 120}}


def test_plan_client_disconnect_aborts(server: ServerProcess) -> None:
    """/v1/plan, like the completions, stops its engine work when its client goes away."""
    full = httpx.post(f"{server.url}/v1/plan", json=SLOW_PLAN, timeout=300)
    assert full.status_code == 200, full.text
    full_tokens = full.json()["usage"]["completion_tokens"]
    before = generated_tokens(server)
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{server.url}/v1/plan", json=SLOW_PLAN, timeout=0.5)
    assert wait_idle(server) == 0
    time.sleep(1)
    assert generated_tokens(server) - before < full_tokens  # the same seeded plan, cut short


def test_sigterm_drains_in_flight_stream_and_exits_zero(tmp_path: Path) -> None:
    srv = start_server(served_model(), tmp_path)
    received: list[str] = []
    errors: list[BaseException] = []
    started = threading.Event()

    def consume() -> None:
        try:
            with httpx.Client(timeout=60) as c, c.stream("POST", f"{srv.url}/v1/completions",
                                                         json={**LONG, "stream": True}) as r:
                for line in r.iter_lines():
                    if line:
                        received.append(line)
                        started.set()
        except BaseException as exc:
            errors.append(exc)
            started.set()

    t = threading.Thread(target=consume)
    t.start()
    assert started.wait(60)
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{srv.url}/ready", timeout=2)  # no new work accepted: the socket is closed
    t.join(90)
    code = srv.stop(timeout=90)
    assert not errors, errors
    assert received[-1] == "data: [DONE]"
    assert code == 0, srv.log()
    # a clean stop is not logged as a failure (vLLM's output handler used to report the engine's exit)
    assert "output_handler failed" not in srv.log_path.read_text(errors="replace")


def test_a_killed_server_leaves_no_engine_behind(tmp_path: Path) -> None:
    """kill -9 of the server: vLLM's EngineCore and its worker end with it (engine/lifeline.py), instead of
    living on re-parented to init with the model's memory."""
    srv = start_server(served_model(), tmp_path)
    engine = psutil.Process(srv.proc.pid).children(recursive=True)
    names = [" ".join(p.cmdline())[:80] for p in engine]
    assert len(engine) >= 2, names  # the engine core and its worker (and multiprocessing's helpers)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(30)
    _gone, alive = psutil.wait_procs(engine, timeout=20)
    for p in alive:
        p.kill()
    assert not alive, [" ".join(p.cmdline())[:80] for p in alive]
