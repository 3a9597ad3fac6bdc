"""catalog.adapters: an adapter says which base it was trained on, and a base that is another is refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from catalog.adapters import ADAPTER_META, QUANTIZED_FROM, base_sha256, check_adapter, read_meta
from catalog.errors import AdapterMismatch, NotAnAdapter


def _base(root: Path, recorded: str | None) -> Path:
    base = root / "base"
    base.mkdir(parents=True)
    (base / "model.safetensors").write_bytes(b"weights")
    if recorded is not None:
        (base / "source.json").write_text(json.dumps({"sha256": recorded}))
    return base


def _adapter(root: Path, meta: dict | None, config: dict | None = None, weights: bool = True) -> Path:
    a = root / "adapter"
    a.mkdir(parents=True)
    (a / "adapter_config.json").write_text(json.dumps(config if config is not None else {"peft_type": "LORA", "r": 16}))
    if weights:
        (a / "adapter_model.safetensors").write_bytes(b"x")
    if meta is not None:
        (a / ADAPTER_META).write_text(json.dumps(meta))
    return a


def test_a_bases_identity_is_its_recorded_sha256_else_its_weights(tmp_path: Path) -> None:
    assert base_sha256(_base(tmp_path / "a", "abc123")) == "abc123"
    assert base_sha256(_base(tmp_path / "b", None)) == hashlib.sha256(b"weights").hexdigest()


def test_an_adapter_of_this_base_passes_with_its_rank(tmp_path: Path) -> None:
    base = _base(tmp_path, "abc123")
    info = check_adapter(_adapter(tmp_path, {"base": "b", "base_sha256": "abc123"}), base)
    assert (info.rank, info.base_sha256) == (16, "abc123")
    assert read_meta(info.path)["base"] == "b"


def test_another_bases_adapter_and_non_adapters_are_refused_naming_why(tmp_path: Path) -> None:
    base = _base(tmp_path, "abc123")
    with pytest.raises(AdapterMismatch, match=r"trained on base other .*sha256 ffff"):
        check_adapter(_adapter(tmp_path / "x", {"base": "other", "base_sha256": "ffff" * 16}), base)
    with pytest.raises(NotAnAdapter, match=r"no adapter_config\.json"):
        check_adapter(tmp_path, base)
    with pytest.raises(NotAnAdapter, match="names another kind"):
        check_adapter(_adapter(tmp_path / "y", None, {"peft_type": "PREFIX_TUNING"}), base)
    with pytest.raises(NotAnAdapter, match="no adapter weights"):
        check_adapter(_adapter(tmp_path / "z", None, weights=False), base)
    # an adapter that says nothing of its base is served unverified (base_sha256 None)
    assert check_adapter(_adapter(tmp_path / "w", None), base).base_sha256 is None


def test_a_base_quantized_from_another_takes_the_originals_adapters_and_no_others(tmp_path: Path) -> None:
    original = _base(tmp_path / "orig", "abc123")
    quantized = tmp_path / "w4a16"
    quantized.mkdir()
    (quantized / "model.safetensors").write_bytes(b"packed int4")
    adapter = _adapter(tmp_path / "a", {"base": "orig", "base_sha256": base_sha256(original)})
    with pytest.raises(AdapterMismatch):  # without the record, the packed weights are another base
        check_adapter(adapter, quantized)
    (quantized / QUANTIZED_FROM).write_text(json.dumps({"model": str(original), "sha256": "abc123"}))
    assert check_adapter(adapter, quantized).base_sha256 == "abc123"
    other = _adapter(tmp_path / "b", {"base": "x", "base_sha256": "fff"})
    with pytest.raises(AdapterMismatch):
        check_adapter(other, quantized)
