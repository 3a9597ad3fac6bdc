"""Engine processes end with the server that started them, however it ends (``kill -9`` included).

vLLM's engine core does not watch its parent: after ``kill -9`` of ``foresight serve`` its
``EngineCore`` and worker lived on, re-parented to init (measured: 0.8 GB and 1.9 GB resident 40 s
later); on a GPU they would keep its memory and the next start would fail to allocate.

:func:`register` (a ``vllm.general_plugins`` entry point: vLLM runs it in every process it
starts) gives each such process a watchdog thread: when its parent is gone (it was re-parented), it
ends itself with SIGKILL. The chain server → EngineCore → worker then ends from the top, within a
poll interval a level, whatever killed the server. Only processes that vLLM started through
:mod:`multiprocessing` watch: the server itself does not (it may outlive the shell that started it).

Why a watchdog, and not the kernel's parent-death signal or a pid file: Linux's ``PR_SET_PDEATHSIG``
fires when the *thread* that started the child ends, and the server starts its engine from a worker
thread (``asyncio.to_thread``), so a retired thread would kill a live engine; a pid file read at the
next start finds a stale engine only when the next server starts — on a GPU, exactly when its memory
cannot be had — and may name a pid reused since. Polling the parent's pid costs one system call a
half-second.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading

log = logging.getLogger(__name__)

POLL_S = 0.5
_watching: list[threading.Thread] = []


def _watch(parent: int, poll_s: float) -> None:
    stop = threading.Event()
    while not stop.wait(poll_s):
        if os.getppid() != parent:  # re-parented: the process that started us is gone
            os.kill(os.getpid(), signal.SIGKILL)


def register(poll_s: float = POLL_S) -> None:
    """In a process vLLM started: end with the parent (idempotent; never raises)."""
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None or _watching:
        return
    if os.getppid() != parent.pid:  # the parent died before we could watch it
        os.kill(os.getpid(), signal.SIGKILL)
    thread = threading.Thread(target=_watch, args=(parent.pid, poll_s), name="foresight-lifeline", daemon=True)
    thread.start()
    _watching.append(thread)
