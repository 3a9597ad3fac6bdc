#!/usr/bin/env bash
# Install what the tests need and run the whole suite (unit + integration on real vLLM CPU).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh || exit 1
bash scripts/test-services.sh || exit 1
bash scripts/quantize-env.sh || exit 1
.venv/bin/python -m pytest "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit $rc
