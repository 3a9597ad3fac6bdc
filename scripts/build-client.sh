#!/usr/bin/env bash
# Build the typed client's own wheel (foresight-client: client/, protocol/, planner/ on httpx + pydantic)
# into DIR (default dist/). Usage: bash scripts/build-client.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-dist}")
PY=${PYTHON:-.venv/bin/python}
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
cp -r client protocol planner packaging/foresight-client/pyproject.toml packaging/foresight-client/README.md "$STAGE"/
find "$STAGE" -name __pycache__ -prune -exec rm -rf {} +
mkdir -p "$OUT"
"$PY" -m pip wheel --quiet --no-deps --no-build-isolation -w "$OUT" "$STAGE"
ls "$OUT"/foresight_client-*.whl
