"""A real PostgreSQL server for tests: Debian's ``postgresql`` binaries, a throw-away cluster on loopback.

``scripts/install.sh`` installs the package where it is missing; without it the
Postgres tests skip locally and fail under CI (``CI`` set), so a missing server is
never mistaken for a pass.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bin_dir() -> Path | None:
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(d, "initdb").exists() and Path(d, "postgres").exists():
            return Path(d)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the ``postgres`` user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


class PgServer:
    """A running throw-away cluster; ``stop()``/``start()`` simulate an outage."""

    def __init__(self, bindir: Path, data: Path, sock: Path, port: int, log: Path) -> None:
        self.bindir, self.data, self.sock, self.port, self.log = bindir, data, sock, port, log
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/foresight"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            _as_postgres([str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k",
                          str(self.sock), "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"]),
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                   capture_output=True)
            if ready.returncode == 0:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)
        raise RuntimeError("postgres did not become ready")

    def stop(self) -> None:
        """Fast shutdown, waiting until the server is really gone (so it can be started again)."""
        if self.proc is not None and self.proc.poll() is None:
            subprocess.run(_as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                                         "stop"]), capture_output=True, timeout=60)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a cluster; yield its SQLAlchemy URL (database ``foresight``, trust auth on loopback)."""
    with postgres_cluster() as pg:
        yield pg.url


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PgServer]:
    """Start a cluster with a database ``foresight`` (trust auth on loopback); yield its handle."""
    bindir = _bin_dir()
    if bindir is None:
        message = "PostgreSQL server binaries not found (Debian package 'postgresql'; scripts/install.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="foresight-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                                 "--no-sync"]), check=True, capture_output=True)
    pg = PgServer(bindir, data, sock, port, root / "server.log")
    try:
        pg.start()
        subprocess.run(_as_postgres([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U",
                                     "postgres", "foresight"]), check=True, capture_output=True)
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
