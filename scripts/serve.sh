#!/usr/bin/env bash
# Install (if needed) and serve the shipped reference model on http://127.0.0.1:8000 (CPU, no downloads).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/foresight serve "$@"
