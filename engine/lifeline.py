"""Engine processes end with the server that started them, however it ends (``kill -9`` included).

vLLM's engine core does not watch its parent: after ``kill -9`` of ``foresight serve`` its
``EngineCore`` and worker lived on, re-parented to init (measured: 0.8 GB and 1.9 GB resident 40 s
later); on a GPU they would keep its memory and the next start would fail to allocate.

:func:`register` (a ``vllm.general_plugins`` entry point: vLLM runs it in every process it
starts) asks the kernel to SIGKILL the process when its parent dies (Linux ``PR_SET_PDEATHSIG``).
The chain server → EngineCore → worker then ends from the top, whatever killed the server. Only
processes that vLLM started through :mod:`multiprocessing` ask for it: the server itself does not
(it may outlive the shell that started it).

Why this and not a pid file read at the next start: a pid file finds a stale engine only when the
next server starts — on a GPU, exactly when its memory cannot be had — and may name a pid reused
since; the kernel's signal comes at once and only for the real child. Linux only; elsewhere a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import sys

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def _set_parent_death_signal(sig: int) -> bool:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return int(libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)) == 0


def register() -> None:
    """In a process vLLM started: die with the parent (idempotent; never raises)."""
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return
    try:
        if not _set_parent_death_signal(signal.SIGKILL):
            log.warning("could not ask to end with the parent process (prctl failed)")
            return
    except OSError as exc:
        log.warning("could not ask to end with the parent process: %s", exc)
        return
    if parent.pid is not None and os.getppid() != parent.pid:  # the parent died before we asked
        os.kill(os.getpid(), signal.SIGKILL)
