#!/usr/bin/env bash
# Build the typed client's own wheel, foresight-client, into DIR (default dist/). Usage: bash scripts/build-client.sh [DIR]
# Its one top-level package is foresight_client. The wire models it speaks are protocol/ (and the pure plan schema
# they are built from, planner/): copied into the staged package as foresight_client/_wire/, and every import of
# them (in the client and in the copies) rewritten to that place. One source, so the client's models are the
# server's (tests/integration/test_client_dist.py compares their JSON schemas from the installed wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-dist}")
PY=${PYTHON:-.venv/bin/python}
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
cp -r foresight_client packaging/foresight-client/pyproject.toml packaging/foresight-client/README.md "$STAGE"/
mkdir -p "$STAGE/foresight_client/_wire"
cp -r protocol planner "$STAGE/foresight_client/_wire/"
echo '"""The wire models foresight_client speaks: copies of the server'"'"'s protocol/ and planner/ (see scripts/build-client.sh)."""' \
  > "$STAGE/foresight_client/_wire/__init__.py"
find "$STAGE" -name __pycache__ -prune -exec rm -rf {} +
find "$STAGE/foresight_client" -name '*.py' -exec sed -i -E \
  -e 's/^(\s*)from (protocol|planner)([. ])/\1from foresight_client._wire.\2\3/' \
  -e 's/^(\s*)import (protocol|planner)\b/\1import foresight_client._wire.\2/' {} +
if grep -rnE '^\s*(from|import) (protocol|planner)\b' "$STAGE/foresight_client"; then
  echo "build-client: an import of protocol/planner was not rewritten (above)" >&2
  exit 1
fi
mkdir -p "$OUT"
"$PY" -m pip wheel --quiet --no-deps --no-build-isolation -w "$OUT" "$STAGE"
ls "$OUT"/foresight_client-*.whl
