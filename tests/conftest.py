"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REFERENCE_MODEL = REPO / "models" / "foresight-numberreach"

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


@pytest.fixture(scope="session")
def reference_model() -> Path:
    if not (REFERENCE_MODEL / "config.json").exists():
        pytest.fail(f"the shipped reference model is missing at {REFERENCE_MODEL}")
    return REFERENCE_MODEL
