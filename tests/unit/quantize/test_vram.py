"""Fit math against hand-computed figures for real architectures, edge cases and errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from foresight.cli import main
from quantize.errors import BadModelConfig, UnknownGpu
from quantize.gpus import CATALOG, find_gpu
from quantize.vram import GIB, Architecture, FitRequest, fit, fit_all, recommend, reserve_bytes, schemes

LLAMA3_8B = dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                 intermediate_size=14336, vocab_size=128256, tie_word_embeddings=False, model_type="llama")
QWEN2_7B = dict(hidden_size=3584, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                intermediate_size=18944, vocab_size=152064, tie_word_embeddings=False, model_type="qwen2")
LLAMA3_70B = dict(hidden_size=8192, num_hidden_layers=80, num_attention_heads=64, num_key_value_heads=8,
                  intermediate_size=28672, vocab_size=128256, model_type="llama")


def test_parameter_counts_match_the_published_models() -> None:
    assert Architecture.from_config(LLAMA3_8B).params == 8_030_261_248  # Llama-3-8B
    assert Architecture.from_config(QWEN2_7B).params == 7_615_616_512  # Qwen2-7B (q/k/v biases)
    assert Architecture.from_config(LLAMA3_70B).params == 70_553_706_496  # Llama-3-70B


def test_kv_bytes_per_token_by_hand() -> None:
    # 2 (K and V) · 32 layers · 8 KV heads · 128 head_dim · 2 bytes = 131,072
    assert Architecture.from_config(LLAMA3_8B).kv_bytes_per_token() == 131_072
    # 2 · 28 · 4 · 128 · 2 = 57,344
    assert Architecture.from_config(QWEN2_7B).kv_bytes_per_token() == 57_344
    # 70B over TP=4: 2 · 80 · (8/4) · 128 · 2 = 81,920 per GPU
    assert Architecture.from_config(LLAMA3_70B).kv_bytes_per_token(tp=4) == 81_920
    # fp8 KV halves it; more ranks than KV heads replicate one head per rank
    assert Architecture.from_config(LLAMA3_8B).kv_bytes_per_token(kv_bytes=1) == 65_536
    assert Architecture.from_config(LLAMA3_8B).kv_bytes_per_token(tp=16) == 2 * 32 * 1 * 128 * 2


def test_weight_bytes_per_scheme_by_hand() -> None:
    arch = Architecture.from_config(LLAMA3_8B)
    req = FitRequest(vram_bytes=80 * GIB)
    by = {f.scheme.label: f for f in fit_all(arch, req)}
    other = 128256 * 4096 * 2 + 32 * 2 * 4096 + 4096  # embeddings + lm_head + norms, 16-bit
    linear = 8_030_261_248 - other
    assert by["bf16"].weight_bytes == 2 * 8_030_261_248
    assert by["W4A16 g128"].weight_bytes == int(linear * (0.5 + 2 / 128) + other * 2)
    # 16-bit embeddings and lm_head (1.05B of the 8B) keep the whole-model ratio below 3.9x
    assert 2.7 < by["bf16"].weight_bytes / by["W4A16 g128"].weight_bytes < 2.9


def test_tied_embeddings_and_gqa_fallbacks() -> None:
    tied = Architecture.from_config({**LLAMA3_8B, "tie_word_embeddings": True})
    assert Architecture.from_config(LLAMA3_8B).params - tied.params == 128256 * 4096
    mha = Architecture.from_config({k: v for k, v in LLAMA3_8B.items() if k != "num_key_value_heads"})
    assert mha.kv_heads == 32 and mha.head_dim == 128


def test_seventy_b_over_four_h100s() -> None:
    arch = Architecture.from_config(LLAMA3_70B)
    req = FitRequest(vram_bytes=find_gpu("H100-SXM").memory_bytes, tp=4, context=8192, concurrency=32)
    f = fit(arch, schemes()[0], req)  # bf16
    assert f.weight_bytes_per_gpu == math.ceil(2 * 70_553_706_496 / 4)
    room = int(find_gpu("H100-SXM").memory_bytes * 0.9) - f.weight_bytes_per_gpu - reserve_bytes(arch, req)
    assert f.kv_room_bytes == room and f.max_concurrency == room // (81_920 * 8192)
    assert f.fits  # ~32.9 GiB of weights per GPU leaves room for > 32 sequences of 8k


def test_nothing_fits_and_recommendation_order() -> None:
    arch = Architecture.from_config(LLAMA3_70B)
    fits = fit_all(arch, FitRequest(vram_bytes=find_gpu("L4").memory_bytes, context=8192, concurrency=1))
    assert recommend(fits) is None and all(f.max_concurrency == 0 for f in fits)
    small = fit_all(Architecture.from_config(LLAMA3_8B), FitRequest(vram_bytes=find_gpu("L40S").memory_bytes))
    assert recommend(small) is small[0]  # bf16 fits: the most precise wins


@pytest.mark.parametrize("bad", [{}, {**LLAMA3_8B, "hidden_size": 0}, {**LLAMA3_8B, "num_key_value_heads": 5}])
def test_bad_configs_name_the_problem(bad: dict) -> None:
    with pytest.raises(BadModelConfig):
        Architecture.from_config(bad)


def test_catalog_and_unknown_gpu() -> None:
    for name in ("L4", "L40S", "A10", "A100-40GB", "A100-80GB", "H100-PCIe", "H100-SXM", "H200", "RTX-6000-Ada",
                 "B200"):
        g = find_gpu(name)
        assert g.memory_mib > 20_000 and g.power_watts > 0 and g.price_usd > 0
    assert len(CATALOG) >= 10 and find_gpu("h100") is CATALOG["h100-sxm"]
    with pytest.raises(UnknownGpu, match="known: L4"):
        find_gpu("GTX-480")


def test_cli_json_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA3_8B))
    assert main(["fit", "--model", str(tmp_path), "--gpu", "L40S", "--context", "8192", "--concurrency", "16",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["scheme"] for r in rows] == ["bf16", "fp8", "W8A16 g128", "W4A16 g128"]
    for r in rows:
        assert {"scheme", "fits", "weight_bytes", "kv_bytes_per_token", "max_concurrency", "vllm_args"} <= set(r)
    assert rows[0]["recommended"] and "--tensor-parallel-size" in rows[0]["vllm_args"]
    assert main(["fit", "--model", str(tmp_path), "--gpu", "L4", "--concurrency", "64"]) == 1
    err = capsys.readouterr().err
    assert "nothing fits" in err and "holds" in err and "Traceback" not in err
    assert main(["fit", "--model", str(tmp_path / "nope"), "--gpu", "L4"]) == 1
    assert "no config.json" in capsys.readouterr().err
    assert main(["fit", "--model", str(tmp_path), "--gpu", "GTX-480"]) == 1
    assert "unknown GPU" in capsys.readouterr().err


def test_vllm_kv_report_lines_parse() -> None:
    from quantize.vram import parse_vllm_kv_report

    cpu = ("(EngineCore pid=1) INFO [kv_cache_utils.py:2327] CPU KV cache size: 1,048,576 tokens, "
           "Maximum concurrency for 256 tokens per request: 4096.00x")
    gpu = ("INFO [kv_cache_utils.py:1087] GPU KV cache size: 412,608 tokens\n"
           "INFO [kv_cache_utils.py:1091] Maximum concurrency for 8,192 tokens per request: 50.37x")
    r = parse_vllm_kv_report(cpu)
    assert r is not None and (r.tokens, r.context, r.max_concurrency) == (1_048_576, 256, 4096.0)
    r = parse_vllm_kv_report(gpu)
    assert r is not None and (r.tokens, r.context, r.max_concurrency) == (412_608, 8192, 50.37)
    assert parse_vllm_kv_report("nothing here") is None


def test_predicted_kv_tokens_of_the_reference_model() -> None:
    from quantize.vram import predicted_kv_tokens

    ref = json.loads((Path(__file__).resolve().parents[3] / "models/foresight-numberreach/config.json").read_text())
    arch = Architecture.from_config(ref)
    # 2 (K and V) · 4 layers · 6 KV heads · 32 dims · 2 bytes = 3072 bytes a token
    assert arch.kv_bytes_per_token(2) == 3072
    assert predicted_kv_tokens(arch, GIB, 2) == GIB // 3072 == 349_525
    # float32 on CPU: vLLM logs "CPU KV cache size: 174,720 tokens" for 1 GiB (whole blocks)
    assert predicted_kv_tokens(arch, GIB, 4) == 174_762
    llama = Architecture.from_config(LLAMA3_8B)
    assert predicted_kv_tokens(llama, 10 * GIB, 2) == 10 * GIB // (2 * 32 * 8 * 128 * 2)
