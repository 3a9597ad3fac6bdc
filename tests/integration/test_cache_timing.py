"""The per-app prefix cache, timed on a real pretrained model (SmolLM2-135M, CPU) with prompts of more than 1,000
tokens, where a cache hit shows in the time to the first token: app B's probe of app A's prompt takes as long as
a cold prompt, while A's own repeat is clearly faster. A bounded test on medians of alternating trials (this
machine is shared and noisy): the repeat below 60% of cold, the probe between 70% and 150% of cold."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.server_process import ServerProcess, start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WORDS = ("river", "stone", "lamp", "orbit", "violet", "harbor", "cedar", "quartz", "meadow", "signal", "copper",
         "lantern", "willow", "ember", "glacier", "thistle")


def long_prompt(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(1100))  # ~1,100 tokens or more on a 49k BPE


@pytest.fixture(scope="module")
def keyed(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict]]:
    srv = start_server(smollm2, tmp_path_factory.mktemp("timing-server"),
                       env={"FORESIGHT_AUTH_ENABLED": "true", "FORESIGHT_DTYPE": "bfloat16",
                            "FORESIGHT_MAX_MODEL_LEN": "2048"})
    auth = {}
    for name in ("alpha", "beta"):
        made = srv.cli("keys", "create", "--name", name)
        assert made.returncode == 0, made.stderr
        auth[name] = {"authorization": f"Bearer {made.stdout.strip()}"}
    yield srv, auth
    srv.stop()


def first_token_s(srv: ServerProcess, auth: dict[str, str], prompt: str) -> tuple[float, int]:
    """Seconds to a one-token completion (its prefill), and the prompt tokens the cache served."""
    t0 = time.perf_counter()
    r = httpx.post(f"{srv.url}/v1/completions", headers=auth, timeout=120,
                   json={"model": "smollm2-135m-instruct", "prompt": prompt, "max_tokens": 1, "temperature": 0})
    took = time.perf_counter() - t0
    assert r.status_code == 200, r.text
    usage = r.json()["usage"]
    assert usage["prompt_tokens"] >= 1000
    return took, int(usage["prompt_tokens_details"]["cached_tokens"])


def test_a_probe_of_another_apps_prompt_is_as_slow_as_a_cold_one(keyed: tuple[ServerProcess, dict]) -> None:
    srv, auth = keyed
    rng = random.Random(7)
    first_token_s(srv, auth["alpha"], long_prompt(rng))  # warm the kernels for this length
    cold, repeat, probe = [], [], []
    for _ in range(5):  # alternating, so that the machine's noise falls on each kind alike
        prompt = long_prompt(rng)
        took, cached = first_token_s(srv, auth["alpha"], prompt)  # A's first: cold
        assert cached == 0
        cold.append(took)
        took, cached = first_token_s(srv, auth["alpha"], prompt)  # A's repeat: from its cache
        assert cached >= 1000
        repeat.append(took)
        took, cached = first_token_s(srv, auth["beta"], prompt)  # B's probe of A's prompt
        assert cached == 0
        probe.append(took)
    c, r, p = statistics.median(cold), statistics.median(repeat), statistics.median(probe)
    print(f"first-token medians: cold {c:.3f} s, own repeat {r:.3f} s, other app's probe {p:.3f} s")
    assert r < 0.6 * c, (cold, repeat)
    assert 0.7 * c < p < 1.5 * c, (cold, probe)
