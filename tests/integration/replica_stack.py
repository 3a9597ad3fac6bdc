"""Two real replicas behind the real edge, on loopback: PostgreSQL and Redis (Debian's servers), two
``foresight serve`` processes (vLLM on CPU, each engine pinned to its own core), vLLM's router
(``vllm-router``) for OpenAI's generation routes and HAProxy (``docker/router/haproxy.cfg``, the file
docker-compose uses) in front of everything — the topology docs/scaling.md describes."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.integration.server_process import ServerProcess, free_port, launch_server, wait_ready
from tests.redis_server import terminate

HAPROXY_CFG = REPO / "docker" / "router" / "haproxy.cfg"


# retries that outlast the health check's notice of a stopped replica (2 failed checks 1 s apart): the
# router retries a refused connection, but on the same replica while it still counts as healthy
ROUTER_RETRIES = ("--retry-max-retries", "6", "--retry-initial-backoff-ms", "200", "--retry-backoff-multiplier", "2",
                  "--retry-max-backoff-ms", "2000")


def router_binary() -> str:
    """The ``vllm-router`` the test extra installs beside this Python."""
    found = Path(sys.executable).parent / "vllm-router"
    return str(found) if found.exists() else (shutil.which("vllm-router") or "")


def need(binary: str, what: str) -> None:
    if not binary:
        message = f"{what} not found"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class Proc:
    """A helper process (router, edge) with its log."""

    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        terminate(self.proc, 15)


@dataclass
class Stack:
    edge_url: str
    router_url: str
    replicas: list[ServerProcess]
    admin_key: str
    procs: dict[str, Proc] = field(default_factory=dict)

    def key(self, name: str, *extra: str) -> str:
        made = self.replicas[0].cli("keys", "create", "--name", name, *extra)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()

    def logs(self) -> str:
        return "\n".join([*(f"--- replica {i}\n{r.log()}" for i, r in enumerate(self.replicas)),
                          *(f"--- {n}\n{p.log()}" for n, p in self.procs.items())])


def start_router(workers: list[str], log_dir: Path, policy: str, port: int | None = None) -> tuple[Proc, str]:
    """vllm-router in front of ``workers``: health-checks ``/ready`` every second, so a draining replica
    stops getting work; its own metrics on a free port (two routers on a host would collide on 29000)."""
    binary = router_binary()
    need(binary, "vllm-router (pip install -e '.[test]')")
    port = port or free_port()
    log_path = log_dir / f"router-{port}.log"
    cmd = [binary, "--host", "127.0.0.1", "--port", str(port), "--worker-urls", *workers, "--policy", policy,
           "--health-check-endpoint", "/ready", "--health-check-interval-secs", "1",
           "--health-failure-threshold", "2", "--health-success-threshold", "1",
           *ROUTER_RETRIES,
           "--prometheus-host", "127.0.0.1", "--prometheus-port", str(free_port()), "--log-level", "warning"]
    with log_path.open("wb") as log:
        proc = Proc(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log_path)
    url = f"http://127.0.0.1:{port}"
    _wait_http(f"{url}/health", proc, 60)  # stops it if it never answers
    return proc, url


def start_edge(router: str, replicas: list[str], log_dir: Path) -> tuple[Proc, str]:
    """HAProxy with the repository's config, its addresses from the environment."""
    binary = shutil.which("haproxy") or ""
    need(binary, "haproxy (Debian package 'haproxy'; scripts/test-services.sh installs it)")
    port = free_port()
    env = {**os.environ, "EDGE_BIND": f"127.0.0.1:{port}", "ROUTER_ADDR": router.removeprefix("http://"),
           "REPLICA_A": replicas[0].removeprefix("http://"), "REPLICA_B": replicas[1].removeprefix("http://")}
    log_path = log_dir / "haproxy.log"
    with log_path.open("wb") as log:
        proc = Proc(subprocess.Popen([binary, "-db", "-f", str(HAPROXY_CFG)], env=env, stdout=log,
                                     stderr=subprocess.STDOUT), log_path)
    url = f"http://127.0.0.1:{port}"
    _wait_http(f"{url}/health", proc, 30)  # stops it if it never answers
    return proc, url


def _wait_http(url: str, proc: Proc, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited:\n{proc.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    proc.stop()
    raise RuntimeError(f"{url} did not answer in {timeout_s} s:\n{proc.log()}")


@contextlib.contextmanager
def replica_stack(model: Path, log_dir: Path, database_url: str, redis_url: str, *, policy: str = "cache_aware",
                  env: dict[str, str] | None = None) -> Iterator[Stack]:
    """Start it all; yield the stack; stop it all (replicas drain on SIGTERM)."""
    shared = {"FORESIGHT_AUTH_ENABLED": "true", "FORESIGHT_AUTH_SECRET": secrets.token_hex(16),
              "FORESIGHT_DATABASE_URL": database_url.replace("+asyncpg", ""), "FORESIGHT_REDIS_URL": redis_url,
              "FORESIGHT_CALIBRATION_SYNC_INTERVAL_S": "1", "FORESIGHT_CALIBRATION_REFIT_INTERVAL_S": "0.2",
              "FORESIGHT_AUTH_CACHE_TTL_S": "2", "FORESIGHT_DRAIN_TIMEOUT_S": "30", **(env or {})}
    replicas: list[ServerProcess] = []
    procs: dict[str, Proc] = {}
    try:
        for core in ("0", "1"):  # each engine on its own core (2 cores in CI)
            replicas.append(launch_server(model, log_dir, env={**shared, "VLLM_CPU_OMP_THREADS_BIND": core}))
        for r in replicas:
            wait_ready(r)
        procs["router"], router_url = start_router([r.url for r in replicas], log_dir, policy)
        procs["edge"], edge_url = start_edge(router_url, [r.url for r in replicas], log_dir)
        made = replicas[0].cli("keys", "create", "--name", "admin", "--role", "admin")
        assert made.returncode == 0, made.stderr
        yield Stack(edge_url, router_url, replicas, made.stdout.strip(), procs)
    finally:
        for p in procs.values():
            p.stop()
        for r in replicas:
            r.stop()
