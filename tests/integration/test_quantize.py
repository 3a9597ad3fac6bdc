"""`foresight quantize` for real on CPU (llm-compressor in .venv-quantize), then served by the real server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from planner.format import parse_turn
from quantize.vram import GIB, Architecture, parse_vllm_kv_report, predicted_kv_tokens
from tests.conftest import REFERENCE_MODEL, REPO
from tests.integration.server_process import ServerProcess, start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("quant") / "numberreach-w4a16-g64"
    proc = subprocess.run(
        [sys.executable, "-m", "foresight", "quantize", "--model", str(REFERENCE_MODEL), "--out", str(out),
         "--group-size", "64", "--calibration-count", "64", "--eval-episodes", "10", "--eval-states", "30",
         "--best-of", "2", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[2/5] GPTQ W4A16 group 64" in proc.stderr  # progress is shown
    return out, json.loads(proc.stdout)


def test_checkpoint_is_compressed_tensors_w4a16(quantized: tuple[Path, dict]) -> None:
    out, _ = quantized
    q = json.loads((out / "config.json").read_text())["quantization_config"]
    assert q["quant_method"] == "compressed-tensors"
    w = q["config_groups"]["group_0"]["weights"]
    assert (w["num_bits"], w["group_size"], w["strategy"]) == (4, 64, "group")
    assert (out / "tokenizer.json").is_file() and (out / "quantization_report.md").is_file()
    assert not list(out.parent.glob(".*partial*"))  # the staging directory is gone


def test_report_numbers_are_present_and_sane(quantized: tuple[Path, dict]) -> None:
    out, rep = quantized
    assert rep == json.loads((out / "quantization_report.json").read_text())
    assert rep["original"]["params"] == rep["quantized"]["params"] > 1_000_000
    assert rep["ratios"]["quantized_layers_vs_16bit"] > 3.5  # 4-bit values + a 16-bit scale per 64
    assert rep["ratios"]["weights_on_disk"] > 4  # from the float32 original
    w = rep["worker"]
    assert 0 <= w["kl_mean"] < 0.05 and w["top1_agreement"] > 0.95 and w["kl_tokens"] > 500
    for side in ("quality_original", "quality_quantized"):
        q = rep[side]
        assert 0.5 <= q["format_validity"] <= 1 and 0 <= q["confidence_brier"] <= 1
        assert 0 <= q["success_model_best_of_n"] <= 1
    assert rep["quality_quantized"]["dtype"] in ("float32", "float16")
    assert parse_turn(w["sample"]).confidence is not None  # the reloaded checkpoint still writes turns


@pytest.fixture(scope="module")
def quantized_server(quantized: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(quantized[0], tmp_path_factory.mktemp("qserver"))
    yield srv
    srv.stop()


def test_quantized_model_serves_through_foresight_serve(quantized: tuple[Path, dict],
                                                       quantized_server: ServerProcess) -> None:
    _out, rep = quantized
    models = httpx.get(f"{quantized_server.url}/v1/models", timeout=10).json()["data"]
    assert models[0]["quantization"] == "compressed-tensors"
    prompt = rep["worker"]["sample_prompt"]
    r = httpx.post(f"{quantized_server.url}/v1/completions", timeout=120, json={
        "model": models[0]["id"], "prompt": prompt, "max_tokens": 48, "temperature": 0})
    assert r.status_code == 200, r.text
    text = r.json()["choices"][0]["text"]
    turn = parse_turn(text)
    assert turn.imaginary and turn.confidence is not None
    # vLLM (its W4A16 path) and transformers (compressed-tensors' own dequantization) agree on the rollout
    assert turn.imaginary == parse_turn(rep["worker"]["sample"]).imaginary


def test_fit_estimate_matches_the_kv_cache_vllm_reports(quantized: tuple[Path, dict],
                                                        quantized_server: ServerProcess) -> None:
    report = parse_vllm_kv_report(quantized_server.log_path.read_text(errors="replace"))
    assert report is not None, "vLLM's start-up log has no KV cache size line"
    arch = Architecture.from_config(json.loads((quantized[0] / "config.json").read_text()))
    dtype = httpx.get(f"{quantized_server.url}/v1/models", timeout=10).json()["data"][0]["dtype"]
    kv_bytes = 4 if dtype == "float32" else 2
    predicted = predicted_kv_tokens(arch, 1 * GIB, kv_bytes)  # start_server gives vLLM 1 GiB of KV cache
    assert abs(report.tokens - predicted) / predicted <= 0.10, (report, predicted)
