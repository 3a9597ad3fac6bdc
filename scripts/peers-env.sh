#!/usr/bin/env bash
# Create the peers' environments for bench/peers.py, each its own venv (their pins must not touch .venv):
#   .venv-peer-its-hub   its-hub 1.2.0, its gateway (`its-iaas`) only: the [iaas] extra's packages, no torch
#   .venv-peer-optillm   optillm 0.4.0 as a proxy only: --no-deps (its declared dependencies pull torch with
#                        CUDA, transformers, spacy, gradio …: 7.7 GB) plus what its server imports at start
# Everything from the package registry. Idempotent: re-runs only when this script changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
ITS_HUB=${FORESIGHT_PEER_ITS_HUB:-its-hub==1.2.0}
OPTILLM=${FORESIGHT_PEER_OPTILLM:-optillm==0.4.0}

make_env() {  # make_env DIR PACKAGE DEPS...
  local dir=$1 pkg=$2; shift 2
  local stamp="$dir/.foresight-installed" want
  want="$(sha256sum scripts/peers-env.sh | cut -d' ' -f1) $pkg"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  [[ -x "$dir/bin/python" ]] || "$PY" -m venv "$dir"
  echo "installing $pkg into $dir (first time: a minute or two)" >&2
  "$dir/bin/python" -m pip install --quiet --upgrade pip
  "$dir/bin/python" -m pip install --quiet --no-deps "$pkg"
  "$dir/bin/python" -m pip install --quiet "$@"
  echo "$want" > "$stamp"
}

# its_hub's gateway talks to the backend with aiohttp; numpy for its algorithms module
make_env .venv-peer-its-hub "$ITS_HUB" numpy typing-extensions aiohttp backoff certifi fastapi uvicorn \
  pydantic click
# optillm's server imports every approach at start: flask, openai, the Cerebras SDK, numpy, networkx (mcts),
# z3 and sympy via math-verify (z3_solver), aiohttp (rstar), PyYAML and math-verify (cepo)
make_env .venv-peer-optillm "$OPTILLM" flask openai cerebras_cloud_sdk numpy networkx 'z3-solver<=4.15.4.0' \
  aiohttp PyYAML math-verify
.venv-peer-its-hub/bin/its-iaas --help > /dev/null
.venv-peer-optillm/bin/optillm --help > /dev/null
