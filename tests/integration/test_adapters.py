"""LoRA adapters served by vLLM (CPU) on the real pretrained base: one server, the shipped NumberReach adapter
loaded at start, another loaded and unloaded at run time, each selected by ``model`` on every endpoint."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from catalog.adapters import ADAPTER_META
from tests.conftest import REPO
from tests.integration.server_process import ServerProcess, start_server

ADAPTER = REPO / "models" / "smollm2-foresight-numberreach"
WM_FE = REPO / "models" / "smollm2-foresight-numberreach-wm-fe"
OBSERVATION = "<information>x=5 target=40 steps=6</information>"


@pytest.fixture(scope="module")
def lora(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The base in bfloat16 (as the adapters were trained) with the shipped adapter, named "numberreach"."""
    if not ADAPTER.is_dir():
        pytest.fail(f"the shipped adapter {ADAPTER} is missing")
    srv = start_server(smollm2, tmp_path_factory.mktemp("lora-server"), "--adapter", f"numberreach={ADAPTER}",
                       env={"FORESIGHT_DTYPE": "bfloat16", "FORESIGHT_MAX_MODEL_LEN": "2048"})
    yield srv
    srv.stop()


def _chat(srv: ServerProcess, model: str | None) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": OBSERVATION}], "max_tokens": 96, "temperature": 0,
            **({"model": model} if model else {})}
    return httpx.post(f"{srv.url}/v1/chat/completions", json=body, timeout=120)


def test_models_lists_base_and_adapter_and_model_selects_it(lora: ServerProcess) -> None:
    listed = httpx.get(f"{lora.url}/v1/models", timeout=10).json()["data"]
    assert [(m["id"], m["parent"]) for m in listed] == [("smollm2-135m-instruct", None),
                                                       ("numberreach", "smollm2-135m-instruct")]
    tuned, base = _chat(lora, "numberreach"), _chat(lora, None)
    assert tuned.status_code == 200 and base.status_code == 200
    assert tuned.json()["model"] == "numberreach" and base.json()["model"] == "smollm2-135m-instruct"
    # the adapter writes a foresight turn (no tools declared: the turn is the message's text); the base does not
    tuned_text = tuned.json()["choices"][0]["message"]["content"] or ""
    base_text = base.json()["choices"][0]["message"]["content"] or ""
    assert "<imaginary>" in tuned_text and "<confidence>" in tuned_text and '"apply"' in tuned_text
    assert "<confidence>" not in base_text
    missing = _chat(lora, "numberreach-v2")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def test_a_plan_on_the_adapter_calibrates_that_adapter(lora: ServerProcess) -> None:
    plan = httpx.post(f"{lora.url}/v1/plan", json={
        "model": "numberreach", "messages": [{"role": "user", "content": OBSERVATION}],
        "algorithm": "best_of_n", "width": 4, "domain": "adapters-it", "seed": 3}, timeout=120)
    assert plan.status_code == 200, plan.text
    body = plan.json()
    assert body["model"] == "numberreach" and body["decision"] != "no_confidence"
    assert body["confidence"]["raw"] is not None and body["action"]["name"] == "apply"
    r = httpx.post(f"{lora.url}/v1/outcomes", json={"plan_id": body["plan_id"], "success": True}, timeout=10)
    assert r.status_code == 200
    cal = httpx.get(f"{lora.url}/v1/calibration", params={"model": "numberreach", "domain": "adapters-it"},
                    timeout=10).json()
    assert cal["model"] == "numberreach" and cal["domains"][0]["outcomes"] == 1
    base = httpx.get(f"{lora.url}/v1/calibration", params={"domain": "adapters-it"}, timeout=10)
    assert base.status_code == 404  # the base has no outcome in that domain: the adapter's is its own


def test_run_time_load_unload_and_a_foreign_adapter_refused(lora: ServerProcess, tmp_path: Path) -> None:
    loaded = httpx.post(f"{lora.url}/v1/adapters", json={"name": "candidate", "path": str(WM_FE)}, timeout=120)
    assert loaded.status_code == 201, loaded.text
    assert _chat(lora, "candidate").status_code == 200
    assert httpx.delete(f"{lora.url}/v1/adapters/candidate", timeout=30).status_code == 200
    assert _chat(lora, "candidate").status_code == 404
    foreign = tmp_path / "foreign"
    shutil.copytree(ADAPTER, foreign)
    meta = json.loads((foreign / ADAPTER_META).read_text())
    (foreign / ADAPTER_META).write_text(json.dumps({**meta, "base_sha256": "0" * 64}))
    refused = httpx.post(f"{lora.url}/v1/adapters", json={"name": "foreign", "path": str(foreign)}, timeout=30)
    assert refused.status_code == 400 and "trained on base" in refused.json()["error"]["message"]
    events = httpx.get(f"{lora.url}/v1/adapters/events", timeout=10).json()["data"]
    assert [e["action"] for e in events[:2]] == ["adapter_unloaded", "adapter_loaded"]
