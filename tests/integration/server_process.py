"""Start the real server (uvicorn + vLLM on CPU) as a subprocess on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import REPO

STARTUP_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """A running ``foresight serve``."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``foresight ARGS`` with this server's settings (same store, same secret)."""
        return subprocess.run([sys.executable, "-m", "foresight", *args], cwd=REPO, env=self.env,
                              capture_output=True, text=True, timeout=120)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def start_server(model: Path, log_dir: Path, *extra: str, env: dict[str, str] | None = None,
                 port: int | None = None) -> ServerProcess:
    return wait_ready(launch_server(model, log_dir, *extra, env=env, port=port))


def launch_server(model: Path, log_dir: Path, *extra: str, env: dict[str, str] | None = None,
                  port: int | None = None, new_session: bool = False) -> ServerProcess:
    """Start ``foresight serve`` without waiting for it (several can load side by side); ``new_session``:
    in a process group of its own, as a terminal's foreground job (Ctrl+C signals the whole group)."""
    port = port or free_port()
    log_path = log_dir / f"server-{port}.log"
    full_env = {**os.environ, "FORESIGHT_LOG_LEVEL": "info", "VLLM_CPU_KVCACHE_SPACE": "1",
                "FORESIGHT_STORE_PATH": str(log_dir / f"store-{port}.db"),
                "FORESIGHT_AUTH_ENABLED": "false", **(env or {})}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "foresight", "serve", "--model", str(model), "--port", str(port), *extra],
            cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=new_session,
        )
    return ServerProcess(proc, port, log_path, full_env)


def wait_ready(server: ServerProcess, timeout_s: float = STARTUP_TIMEOUT_S) -> ServerProcess:
    """Wait for ``/ready``; a server that exits or never gets there fails with its log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode} during start-up:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/ready", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"server not ready after {timeout_s}s:\n{server.log()}")
