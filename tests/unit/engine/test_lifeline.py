"""A process started through multiprocessing that registered the lifeline ends when its parent is killed."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time

import psutil
import pytest

from engine import lifeline

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")


def _grandchild(registered: bool, pids: multiprocessing.SimpleQueue) -> None:  # type: ignore[type-arg]
    if registered:
        lifeline.register()
    pids.put(os.getpid())
    time.sleep(60)


def _child(registered: bool, pids: multiprocessing.SimpleQueue) -> None:  # type: ignore[type-arg]
    ctx = multiprocessing.get_context("spawn")
    ctx.Process(target=_grandchild, args=(registered, pids), daemon=False).start()
    time.sleep(60)


@pytest.mark.parametrize("registered", [True, False])
def test_a_registered_process_dies_with_its_killed_parent(registered: bool) -> None:
    ctx = multiprocessing.get_context("spawn")
    pids = ctx.SimpleQueue()
    parent = ctx.Process(target=_child, args=(registered, pids))
    parent.start()
    grandchild = psutil.Process(pids.get())
    os.kill(parent.pid, signal.SIGKILL)  # type: ignore[arg-type]
    parent.join()
    try:
        gone, _ = psutil.wait_procs([grandchild], timeout=5)
        assert bool(gone) is registered  # without the lifeline it lives on, re-parented (what vLLM's did)
    finally:
        if grandchild.is_running():
            grandchild.kill()


def test_the_server_process_itself_does_not_register() -> None:
    """The server may outlive the shell that started it: only vLLM's children ask."""
    import ctypes
    import ctypes.util

    lifeline.register()  # in the test process: no multiprocessing parent
    sig = ctypes.c_int(-1)
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    assert libc.prctl(2, ctypes.byref(sig), 0, 0, 0) == 0  # PR_GET_PDEATHSIG
    assert sig.value == 0
