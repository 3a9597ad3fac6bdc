"""``@with_cancellation``: a route's work is cancelled when its client goes away.

The handler races a watcher that waits on the connection's ``http.disconnect`` message (as vLLM's
own ``listen_for_disconnect`` does; polling ``request.is_disconnected()`` is known to miss it behind
middleware); if the client disconnects first, the handler is cancelled — which aborts every engine
request it has in flight (a plan's candidates included) — and the request ends as 499
(:class:`server.errors.ClientDisconnected`). Streams need no such thing: Starlette stops a stream
whose client left, and the generator's ``finally`` aborts.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from fastapi import Request

from server.errors import ClientDisconnected

P = ParamSpec("P")
T = TypeVar("T")


async def _watch(request: Request) -> None:
    """Returns when the client has gone (the body was read before the handler ran: what comes next on the
    connection is its end)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def with_cancellation(handler: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Decorate a route whose parameters include ``request: Request``."""

    @functools.wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        request = kwargs.get("request")
        if not isinstance(request, Request):
            raise TypeError(f"{handler.__name__} needs a 'request: Request' parameter for @with_cancellation")
        work = asyncio.ensure_future(handler(*args, **kwargs))
        watcher = asyncio.ensure_future(_watch(request))
        try:
            done, _ = await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, watcher):
                if not task.done():
                    task.cancel()
            await asyncio.gather(work, watcher, return_exceptions=True)
        if work in done:
            return work.result()
        raise ClientDisconnected("the client went away; its work was aborted")

    # the handler's own signature, its string annotations resolved where they were written: FastAPI
    # reads the parameters from it (older releases resolved them in this module, not the handler's)
    wrapper.__signature__ = inspect.signature(handler, eval_str=True)  # type: ignore[attr-defined]
    return wrapper
