#!/usr/bin/env bash
# Install the Debian packages the test suite runs for real: PostgreSQL (outcome store) and
# Prometheus (+ promtool: dashboards' and alert rules' queries against the real server) and Chromium
# (the inspector page in a real browser), Redis (shared rate limits) and HAProxy (in front of replicas).
# The tests start and stop their own throw-away servers on loopback; nothing is left running.
set -euo pipefail
need=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v prometheus >/dev/null && command -v promtool >/dev/null || need+=(prometheus)
command -v redis-server >/dev/null || need+=(redis-server)  # rate limits shared by replicas
command -v haproxy >/dev/null || need+=(haproxy)  # fronts the replicas where vllm-router cannot (docs/scaling.md)
command -v chromium >/dev/null || need+=(chromium)  # the inspector page's browser test (Playwright drives it)
if [[ ${#need[@]} -eq 0 ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "test-services: please install ${need[*]} (Debian packages); the tests that need them will skip" >&2
  exit 0
fi
echo "test-services: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
