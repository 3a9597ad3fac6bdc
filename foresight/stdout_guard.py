"""Keep stdout for a command's machine-readable answer while libraries (vLLM) log to it.

vLLM's loggers write to stdout, from this process and from the engine processes it starts, which
would break ``--json`` output. :func:`json_stdout` points file descriptor 1 at stderr for the
duration (children inherit it) and hands back a stream on the real stdout for the answer alone.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TextIO


@contextlib.contextmanager
def json_stdout(enabled: bool = True) -> Iterator[TextIO]:
    if not enabled:
        yield sys.stdout
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    answer = os.fdopen(os.dup(saved), "w", encoding="utf-8")
    try:
        yield answer
    finally:
        answer.flush()
        answer.close()
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
