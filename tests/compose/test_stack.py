"""The compose stack under a real Docker daemon: our images built from the real Dockerfiles, third-party
images replaced by local stand-ins (docker/compose.test.yml). Run by scripts/compose-test.sh, which
builds the images, starts its own dockerd and sets the environment read here; skipped otherwise.

In order: the stack comes up healthy; a key made inside the server container works; a plan and its
outcome land in PostgreSQL; Prometheus, in its container, scrapes the server; ``docker compose stop``
drains the server and it exits 0; ``up`` again keeps the outcomes (the volume); a CPU quantize job
writes a W4A16 checkpoint that the server container then serves.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.compose,
              pytest.mark.skipif("FORESIGHT_COMPOSE_TEST" not in os.environ,
                                 reason="run by scripts/compose-test.sh (needs its dockerd and images)")]

SERVER = "http://127.0.0.1:8000"
PROMETHEUS = "http://127.0.0.1:9090"
FILES = ("-f", "docker/docker-compose.yml", "-f", "docker/compose.test.yml")


def compose(*args: str, env: dict[str, str] | None = None, check: bool = True,
            timeout: float = 900) -> subprocess.CompletedProcess[str]:
    cmd = [*shlex.split(os.environ.get("FORESIGHT_COMPOSE", "docker compose")), *FILES, *args]
    proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def wait_for(what: str, probe: object, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = probe()  # type: ignore[operator]
            if last is True:
                return
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        time.sleep(2)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})")


def ready() -> bool:
    return httpx.get(f"{SERVER}/ready", timeout=5).status_code == 200


def psql(sql: str) -> str:
    return compose("exec", "-T", "postgres", "psql", "-U", "foresight", "-d", "foresight", "-At", "-c", sql).stdout


@pytest.fixture(scope="module")
def stack() -> Iterator[None]:
    # what an interrupted run left (its volumes hold a PostgreSQL cluster with another run's password)
    compose("--profile", "cpu", "--profile", "quantize-cpu", "down", "--volumes", "--remove-orphans", check=False)
    compose("--profile", "cpu", "up", "-d", "--wait", "--wait-timeout", "600", "server-cpu", "postgres", "prometheus")
    yield
    if os.environ.get("FORESIGHT_COMPOSE_KEEP") != "1":
        compose("--profile", "cpu", "--profile", "quantize-cpu", "down", "--volumes", "--timeout", "60", check=False)


@pytest.fixture(scope="module")
def key(stack: None) -> str:
    # the output, not the exit code: compose v2.40 against dockerd 20.10 reports 0 for any command exec'd
    proc = compose("--profile", "cpu", "exec", "-T", "server-cpu", "foresight", "keys", "create", "--name",
                   f"compose-test-{secrets.token_hex(3)}", "--role", "admin")
    token = next((w for w in proc.stdout.split() if w.startswith("fsk-")), None)
    assert token, f"no key in the output of foresight keys create:\n{proc.stdout}\n{proc.stderr}"
    return token


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("image", ["foresight-serve:cpu", "foresight-serve:quantize-cpu"])
def test_images_run_as_non_root_offline_and_hold_no_build_inputs_or_secrets(image: str) -> None:
    inspect = json.loads(subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True,
                                        check=True).stdout)[0]["Config"]
    assert inspect["User"] not in ("", "root", "0"), inspect["User"]
    assert "HF_HUB_OFFLINE=1" in inspect["Env"]
    history = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image],
                             capture_output=True, text=True, check=True).stdout
    env = (REPO / "docker" / ".env").read_text()
    secrets_here = [line.split("=", 1)[1] for line in env.splitlines()
                    if line.split("=", 1)[0] in ("POSTGRES_PASSWORD", "FORESIGHT_AUTH_SECRET")]
    for text in (history, json.dumps(inspect)):
        assert "build-inputs" not in text and "ca.crt" not in text
        assert not [s for s in secrets_here if s and s in text]
    look = "ls /tmp/build-inputs /src 2>&1; find / -name 'torch-*.whl' -not -path '/proc/*' 2>/dev/null"
    files = subprocess.run(["docker", "run", "--rm", "--entrypoint", "sh", image, "-c", look],
                           capture_output=True, text=True).stdout
    assert files.count("No such file") == 2 and ".whl" not in files, files


def test_the_stack_is_healthy(stack: None) -> None:
    ps = compose("--profile", "cpu", "ps", "--format", "json").stdout
    rows = [json.loads(line) for line in ps.splitlines() if line.strip()] if not ps.lstrip().startswith("[") \
        else json.loads(ps)
    health = {r["Service"]: r.get("Health") for r in rows}
    assert health.get("server-cpu") == "healthy", health
    assert health.get("postgres") == "healthy", health
    assert ready()


def test_a_key_made_in_the_container_works(key: str) -> None:
    assert httpx.get(f"{SERVER}/v1/models", timeout=10).status_code == 401
    r = httpx.get(f"{SERVER}/v1/models", headers=headers(key), timeout=10)
    assert r.status_code == 200, r.text


def test_a_plan_and_its_outcome_land_in_postgres(key: str) -> None:
    r = httpx.post(f"{SERVER}/v1/plan", headers=headers(key), timeout=120, json={
        "prompt": "<information>x=3 target=24 steps=4</information>\n", "algorithm": "branch_commit",
        "domain": "compose-test"})
    assert r.status_code == 200, r.text
    plan_id = r.json()["plan_id"]
    o = httpx.post(f"{SERVER}/v1/outcomes", headers=headers(key), timeout=30,
                   json={"plan_id": plan_id, "success": True})
    assert o.status_code in (200, 201), o.text
    assert psql(f"select count(*) from outcomes where plan_id = '{plan_id}'").strip() == "1"


def test_prometheus_in_its_container_scrapes_the_server(stack: None) -> None:
    def up() -> bool | str:
        r = httpx.get(f"{PROMETHEUS}/api/v1/query", params={"query": 'up{job="foresight"}'}, timeout=5).json()
        values = [s["value"][1] for s in r["data"]["result"]]
        return values == ["1"] or str(values)
    wait_for("Prometheus scraping the server", up, timeout=120)


def test_stop_drains_and_exits_0_and_up_keeps_the_outcomes(key: str) -> None:
    before = psql("select count(*) from outcomes").strip()
    assert int(before) >= 1
    compose("--profile", "cpu", "stop", "server-cpu", timeout=120)
    ps = compose("--profile", "cpu", "ps", "-a", "--format", "json").stdout
    rows = [json.loads(line) for line in ps.splitlines() if line.strip()] if not ps.lstrip().startswith("[") \
        else json.loads(ps)
    server = next(r for r in rows if r["Service"] == "server-cpu")
    assert server["State"] == "exited" and server["ExitCode"] == 0, server
    logs = compose("--profile", "cpu", "logs", "server-cpu").stdout
    assert "draining" in logs, logs[-2000:]
    compose("--profile", "cpu", "up", "-d", "--wait", "--wait-timeout", "600", "server-cpu")
    assert psql("select count(*) from outcomes").strip() == before
    r = httpx.get(f"{SERVER}/v1/models", headers=headers(key), timeout=10)
    assert r.status_code == 200, "the key (in PostgreSQL) outlived the container"


def test_a_cpu_quantize_job_writes_a_checkpoint_the_server_serves(key: str) -> None:
    out = Path(os.environ["QUANTIZE_OUT_DIR"])
    compose("--profile", "quantize-cpu", "run", "--rm", "quantize-cpu", "--model", "/models/src", "--out",
            "/models/out/w4a16", "--group-size", "64", "--calibration-count", "64", "--eval-episodes", "4",
            "--eval-states", "16", "--best-of", "2", timeout=1800)
    config = json.loads((out / "w4a16" / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "compressed-tensors", config.get("quantization_config")
    assert (out / "w4a16" / "quantization_report.json").is_file()
    compose("--profile", "cpu", "up", "-d", "--wait", "--wait-timeout", "600", "server-cpu",
            env={"MODEL_DIR": str(out / "w4a16")})
    models = httpx.get(f"{SERVER}/v1/models", headers=headers(key), timeout=10).json()["data"]
    assert models[0]["quantization"] == "compressed-tensors", models
    r = httpx.post(f"{SERVER}/v1/completions", headers=headers(key), timeout=120, json={
        "model": models[0]["id"], "prompt": "<information>x=3 target=24 steps=4</information>\n", "max_tokens": 24})
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["completion_tokens"] > 0
