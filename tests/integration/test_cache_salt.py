"""A prefix cache per app on vLLM itself (CPU, the reference model): app B, sending app A's prompt, is told 0 cached
tokens on chat, completions and plans, while A's own repeat is served from the cache (the positive control); and
vLLM's priority scheduling takes a batch-class key's requests, each at the lower priority (that every engine
call carries it: tests/unit/server/routes/test_priority_classes.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import REFERENCE_MODEL
from tests.integration.server_process import ServerProcess, start_server


def history(target: int) -> str:
    """A long history (whole blocks of it can be cached), in the reference model's own words; one target per
    case, so that no case finds another's blocks (the chat template renders the same text as the raw prompt)."""
    return "".join(f"<information>x={x} target={target} steps=6</information>\n" for x in range(2, 14))


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, dict[str, str]]]]:
    srv = start_server(REFERENCE_MODEL, tmp_path_factory.mktemp("salt-server"),
                       env={"FORESIGHT_AUTH_ENABLED": "true", "FORESIGHT_BLOCK_SIZE": "32"})
    auth = {}
    for name, extra in (("alpha", ()), ("beta", ()), ("bulk", ("--priority-class", "batch"))):
        made = srv.cli("keys", "create", "--name", name, *extra)
        assert made.returncode == 0, made.stderr
        auth[name] = {"authorization": f"Bearer {made.stdout.strip()}"}
    yield srv, auth
    srv.stop()


def cached(body: dict[str, Any]) -> int:
    return int(body["usage"]["prompt_tokens_details"]["cached_tokens"])


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/completions", {"model": "foresight-numberreach", "prompt": history(90), "max_tokens": 4}),
    ("/v1/chat/completions", {"model": "foresight-numberreach",
                              "messages": [{"role": "user", "content": history(91)}], "max_tokens": 4}),
    # one sample a call: the n samples of one call share their prompt's blocks (the same app, rightly), so a
    # probe with n > 1 reports cached tokens from its own siblings whatever the salt
    ("/v1/plan", {"prompt": history(92), "algorithm": "greedy", "max_tokens_per_turn": 64}),
])
def test_another_app_gets_no_cached_tokens_its_own_repeat_does(keyed: tuple[ServerProcess, dict[str, dict[str, str]]],
                                                              path: str, body: dict[str, Any]) -> None:
    srv, auth = keyed

    def post(who: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        r = httpx.post(f"{srv.url}{path}", json={**body, **(extra or {})}, headers=auth[who], timeout=120)
        assert r.status_code == 200, r.text
        return dict(r.json())

    first = post("alpha")
    assert first["usage"]["prompt_tokens"] > 64
    assert cached(post("beta", {"cache_salt": "anything"})) == 0  # a client's own salt changes nothing
    assert cached(post("alpha")) >= 32  # the positive control: whole blocks of its own prompt


def test_vllm_takes_a_batch_keys_lower_priority_on_completions_and_plans(
        keyed: tuple[ServerProcess, dict[str, dict[str, str]]]) -> None:
    srv, auth = keyed
    for path, body in (("/v1/completions", {"model": "foresight-numberreach", "prompt": history(93), "max_tokens": 4}),
                       ("/v1/plan", {"prompt": history(93), "algorithm": "branch_commit"})):
        r = httpx.post(f"{srv.url}{path}", json=body, headers=auth["bulk"], timeout=120)
        assert r.status_code == 200, r.text
