"""/v1/plan on the real server with the reference model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from reference import data
from reference import numberreach as env
from tests.conftest import REPO
from tests.integration.server_process import ServerProcess

pytestmark = pytest.mark.integration
STATE = env.State(5, 40, 6)


@pytest.mark.parametrize("algorithm", ["greedy", "best_of_n", "branch_commit", "lookahead"])
def test_plan_algorithms_on_the_reference_model(server: ServerProcess, algorithm: str) -> None:
    body = {"prompt": data.prompt_for(STATE), "algorithm": algorithm, "width": 4, "seed": 1, "return_tree": True,
            "lookahead_context": "observation", "budget": {"max_depth": 2, "max_candidates": 12}}
    r = httpx.post(f"{server.url}/v1/plan", json=body, timeout=120)
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["decision"] in ("commit", "budget_exhausted")
    assert plan["action"]["kind"] == "tool_call"
    assert data.op_of_action(plan["action"]["arguments"]) in env.OPS
    assert plan["confidence"]["raw"] is not None and 0 <= plan["confidence"]["raw"] <= 1
    # every candidate's tokens are counted (lookahead also pays for imagined observations)
    assert plan["usage"]["completion_tokens"] >= sum(c["tokens"] for c in plan["candidates"]) > 0
    if algorithm != "lookahead":
        assert plan["usage"]["completion_tokens"] == sum(c["tokens"] for c in plan["candidates"])
    if algorithm == "lookahead":
        assert plan["usage"]["depth"] == 2
        assert any(c["depth"] == 2 for c in plan["candidates"])


def test_lookahead_widens_its_roots_on_the_reference_model(server: ServerProcess) -> None:
    # from 2 no two operations reach 99: no plan can claim the threshold, so every round is drawn
    body = {"prompt": data.prompt_for(env.State(2, 99, 2)), "algorithm": "lookahead", "width": 2, "seed": 3,
            "root_rounds": 3, "commit_threshold": 1.0, "budget": {"max_depth": 1, "max_candidates": 6}}
    r = httpx.post(f"{server.url}/v1/plan", json=body, timeout=120)
    assert r.status_code == 200, r.text
    roots = [c for c in r.json()["candidates"] if c["depth"] == 1]
    assert len(roots) == 6 and r.json()["usage"]["engine_calls"] == 3


def test_local_sampler_loads_the_checkpoint_here(tmp_path: Path) -> None:
    """What the benchmarks plan through: an engine loaded in this process, the planner's sampler over it."""
    code = (
        "import asyncio, json\n"
        "from planner import parse_turn\n"
        "from reference import data, numberreach as env\n"
        "from engine.sampler import local_sampler\n"
        "async def main():\n"
        "    async with local_sampler('models/foresight-numberreach') as s:\n"
        "        prompt = s.start(data.prompt_for(env.State(5, 40, 6)))\n"
        "        b = await s.sample(prompt, 2, stop=['</tool_call>'], max_tokens=128, temperature=1.0, seed=1)\n"
        "    print(json.dumps([[x.tokens, parse_turn(x.text).confidence is not None] for x in b.samples]))\n"
        "if __name__ == '__main__':\n"
        "    asyncio.run(main())\n"
    )
    script = tmp_path / "sample.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), "VLLM_CPU_KVCACHE_SPACE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    samples = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(samples) == 2 and all(tokens > 0 and parsed for tokens, parsed in samples)


def test_plan_rejects_bad_parameters(server: ServerProcess) -> None:
    r = httpx.post(f"{server.url}/v1/plan", json={"prompt": "x", "commit_threshold": 3})
    assert r.status_code == 400 and "commit_threshold" in r.json()["error"]["message"]


def test_plan_cli_against_the_server(server: ServerProcess, tmp_path: Path) -> None:
    prompt = tmp_path / "obs.txt"
    prompt.write_text(data.prompt_for(STATE))
    proc = subprocess.run([sys.executable, "-m", "foresight", "plan", "--prompt-file", str(prompt), "--url", server.url,
                           "--algorithm", "best_of_n"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "decision" in proc.stdout and "tool_call" in proc.stdout
