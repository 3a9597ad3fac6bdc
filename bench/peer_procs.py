"""The peers as processes for ``bench/peers.py``: its_hub's gateway and optillm's proxy, each from its own
virtual environment (``scripts/peers-env.sh``), in front of our server with its own app key; their CPU time.

- its_hub 1.2.0: ``its-iaas --host 127.0.0.1 --port P``, then ``POST /configure`` (``endpoint`` our
  ``/v1``, ``api_key`` its key, ``alg`` ``self-consistency`` — the only one its gateway takes —, ``budget``,
  ``regex_patterns``: the vote is the pattern's first group, the action). It calls our chat endpoint
  ``budget`` times with n = 1, concurrently (32 at most per gateway), and forwards neither ``max_tokens``
  nor ``temperature``.
- its_hub 1.2.0's library: ``AdaptiveSelfConsistency`` and ``BetaSelfConsistency`` (not in its gateway), behind
  ``bench/peer_plugins/its_hub_library.py``'s small chat endpoint, in its_hub's environment, one key each.
- optillm 0.4.0: ``optillm --base-url OUR/v1 --port P`` with ``OPENAI_API_KEY`` its key (and
  ``OPTILLM_API_KEY`` unset: set, it would switch to a local torch engine), started in
  ``bench/peer_plugins`` so that it loads our plugin from ``./optillm/plugins/`` (read once, at start).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
ITS_HUB = REPO / ".venv-peer-its-hub" / "bin" / "its-iaas"
OPTILLM = REPO / ".venv-peer-optillm" / "bin" / "optillm"
ITS_HUB_PYTHON = REPO / ".venv-peer-its-hub" / "bin" / "python"
PLUGINS = REPO / "bench" / "peer_plugins"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Peers:
    its_hub: str = ""  # base URLs ("" when not started)
    its_hub_lib: str = ""
    optillm: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def pid(self, kind: str) -> int | None:
        proc = self.procs.get(kind)
        return proc.pid if proc is not None else None

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def cpu_seconds(pid: int | None) -> float:
    """User and system CPU seconds of a process and its children so far (0 for none)."""
    if pid is None:
        return 0.0
    try:
        proc = psutil.Process(pid)
        total = sum(proc.cpu_times()[:2])
        for child in proc.children(recursive=True):
            total += sum(child.cpu_times()[:2])
        return float(total)
    except psutil.Error:
        return 0.0


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not up after {timeout_s}s:\n{log.read_text(errors='replace')[-3000:]}")


def start_peers(kinds: set[str], server_url: str, model: str, keys: dict[str, str], methods: list[Any],
                work: Path, pattern: str, budget: int) -> Peers:
    """Start the peers named in ``kinds`` (``its_hub``, ``optillm``) against ``server_url``; each uses the key
    of its method (``keys`` by method name)."""
    peers = Peers()
    key_of = {m.kind: keys[m.name] for m in methods if m.kind in kinds and m.kind != "its_hub_lib"}
    env = {k: v for k, v in os.environ.items() if k not in ("OPTILLM_API_KEY", "VIRTUAL_ENV", "PYTHONPATH")}
    backend = f"{server_url}/v1"
    try:
        if "its_hub" in kinds:
            peers.its_hub = _start(peers, "its_hub", [str(ITS_HUB), "--host", "127.0.0.1", "--port", "{port}"],
                                   "/docs", work, env)
            _configure(peers.its_hub, {"endpoint": backend, "api_key": key_of["its_hub"], "model": model,
                                       "alg": "self-consistency", "budget": budget, "regex_patterns": [pattern]})
        if "its_hub_lib" in kinds:
            peers.its_hub_lib = _start(peers, "its_hub_lib", [str(ITS_HUB_PYTHON), str(PLUGINS / "its_hub_library.py"),
                                                              "--port", "{port}"], "/health", work, env)
            lib_keys = {m.body["alg"]: keys[m.name] for m in methods if m.kind == "its_hub_lib"}
            _configure(peers.its_hub_lib, {"endpoint": backend, "model": model, "pattern": pattern, "keys": lib_keys})
        if "optillm" in kinds:
            peers.optillm = _start(peers, "optillm", [str(OPTILLM), "--base-url", backend, "--port", "{port}"],
                                   "/health", work, {**env, "OPENAI_API_KEY": key_of["optillm"]}, cwd=PLUGINS)
            if "action_vote" not in (work / "optillm.log").read_text(errors="replace"):
                raise RuntimeError(f"optillm did not load bench/peer_plugins' action_vote plugin; see {work}")
    except BaseException:
        peers.stop()
        raise
    return peers


def _start(peers: Peers, kind: str, argv: list[str], ready: str, work: Path, env: dict[str, str],
           cwd: Path | None = None) -> str:
    """Start one peer on a free port (``{port}`` in ``argv``), logging to ``work/KIND.log``; its base URL once
    ``ready`` answers."""
    port = _free_port()
    log = work / f"{kind}.log"
    peers.procs[kind] = subprocess.Popen([a.replace("{port}", str(port)) for a in argv], cwd=cwd or work, env=env,
                                         stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    _wait(f"{url}{ready}", peers.procs[kind], log)
    return url


def _configure(url: str, body: dict[str, Any]) -> None:
    r = httpx.post(f"{url}/configure", timeout=30, json=body)
    if r.status_code >= 400:
        raise RuntimeError(f"{url}/configure answered {r.status_code}: {r.text}")
