"""A process started through multiprocessing that registered the lifeline ends when its parent is killed."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time

import psutil
import pytest

from engine import lifeline

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="re-parenting as on Linux")


def _grandchild(registered: bool, pids: multiprocessing.SimpleQueue) -> None:  # type: ignore[type-arg]
    if registered:
        lifeline.register(poll_s=0.05)
    pids.put(os.getpid())
    time.sleep(60)


def _child(registered: bool, pids: multiprocessing.SimpleQueue) -> None:  # type: ignore[type-arg]
    ctx = multiprocessing.get_context("spawn")
    # started from a thread that then ends, as the server starts its engine (asyncio.to_thread): the
    # watchdog must not take the thread's end for the parent's
    starter = threading.Thread(target=ctx.Process(target=_grandchild, args=(registered, pids), daemon=False).start)
    starter.start()
    starter.join()
    time.sleep(60)


@pytest.mark.parametrize("registered", [True, False])
def test_a_registered_process_dies_with_its_killed_parent(registered: bool) -> None:
    ctx = multiprocessing.get_context("spawn")
    pids = ctx.SimpleQueue()
    parent = ctx.Process(target=_child, args=(registered, pids))
    parent.start()
    grandchild = psutil.Process(pids.get())
    time.sleep(0.5)  # several polls while its parent lives (the thread that started it has ended)
    assert grandchild.is_running() and grandchild.status() != psutil.STATUS_ZOMBIE
    os.kill(parent.pid, signal.SIGKILL)  # type: ignore[arg-type]
    parent.join()
    try:
        gone, _ = psutil.wait_procs([grandchild], timeout=5)
        assert bool(gone) is registered  # without the lifeline it lives on, re-parented (what vLLM's did)
    finally:
        if grandchild.is_running():
            grandchild.kill()


def test_the_server_process_itself_does_not_watch() -> None:
    """The server may outlive the shell that started it: only vLLM's children watch their parent."""
    lifeline.register()  # in the test process: no multiprocessing parent
    assert lifeline._watching == []
    assert not [t for t in threading.enumerate() if t.name == "foresight-lifeline"]
