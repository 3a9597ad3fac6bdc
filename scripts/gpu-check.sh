#!/usr/bin/env bash
# Checks that need an NVIDIA GPU but not vLLM: NVML power readings (the tests marked gpu), GPTQ through
# llm-compressor on CUDA, and `foresight fit`'s weight and KV-cache math against real GPU memory
# (bench/gpu_fit_check.py). Writes logs under $OUT (default /tmp/gpu-check).
# On a machine without registry access, bring the wheels it lacks in .whl/ (installed to /tmp/site).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1
rc=0
nvidia-smi --query-gpu=name,memory.total,power.draw,driver_version --format=csv | tee "$OUT/nvidia-smi.csv" || rc=1
echo "== NVML power (tests marked gpu)"
$PY -m pytest -q -p no:cacheprovider --noconftest -m gpu tests/unit/server/test_power_gpu.py 2>&1 | tee "$OUT/power.log"
[[ ${PIPESTATUS[0]} -eq 0 ]] || rc=1
echo "== GPTQ W4A16 g64 of the reference model through llm-compressor (worker of foresight quantize)"
$PY - <<'PY' 2>&1 | tee "$OUT/quantize.log"
import json, sys
from quantize import runner
from quantize.plan import make_plan
from quantize.traces import reference_traces
plan = make_plan("models/foresight-numberreach", "/tmp/gpu-check-w4a16-g64", "W4A16", 64)
worker = runner.run_worker(plan, reference_traces(256, 0, False), reference_traces(64, 1, True), sys.executable, True)
print(json.dumps(worker, indent=2))
PY
[[ ${PIPESTATUS[0]} -eq 0 ]] || rc=1
echo "== fit estimate vs real GPU memory"
$PY bench/gpu_fit_check.py --tokens 2048 --w4a16 /tmp/gpu-check-w4a16-g64 --json "$OUT/fit.json" 2>&1 | tee "$OUT/fit.log"
[[ ${PIPESTATUS[0]} -eq 0 ]] || rc=1
exit $rc
