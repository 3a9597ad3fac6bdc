"""Per-key rate limits through the ``limits`` library: in this process's memory by default, in Redis
(``redis_url``) so that a key's limits hold across every replica together.

Requests per minute use a *moving* window: a request is counted when admitted and refused, not
overdrawn, once 60 s hold ``rpm`` of them. Tokens per minute are known only after a request, so they
use a *fixed* one-minute window charged with the actual count afterwards: a request is admitted while
the key's window is below its ``tpm``; its tokens are then added even if that carries the window
past the limit, and the key waits for the window to end (at most a minute: an overdraft is not
carried into the next window). A request refused for its tokens costs no request slot.

Storage that fails (Redis down, or slower than half a second): the request is admitted — fail open —
with a warning in the log and ``foresight_rate_limit_errors_total`` counting it; for the next two
seconds requests are admitted without asking it (each counted alike), so an outage costs a request at
most one storage timeout. The admission queue still bounds the load.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from server.auth import Principal

log = logging.getLogger("foresight.ratelimit")

STORAGE_TIMEOUT_S = 0.5  # a slow Redis is treated as a failed one: it must not hold every request
STORAGE_RETRY_S = 2.0  # after a failure, admit without asking the storage for this long
WARN_EVERY_S = 30.0


def storage_uri(redis_url: str | None) -> str:
    """The ``limits`` storage for ``redis_url`` (``redis://`` or ``rediss://``); memory without one."""
    if not redis_url:
        return "async+memory://"
    scheme = urlsplit(redis_url).scheme
    if scheme not in ("redis", "rediss", "redis+unix"):
        raise ValueError(f"redis_url must start with redis://, rediss:// or redis+unix://, not {scheme or '?'}://")
    return f"async+{redis_url}"


def open_storage(redis_url: str | None) -> Storage:
    """Memory, or Redis through coredis with short timeouts (so a dead Redis fails fast)."""
    uri = storage_uri(redis_url)
    if uri.startswith("async+memory"):
        return MemoryStorage()
    return RedisStorage(uri, wrap_exceptions=True, connect_timeout=STORAGE_TIMEOUT_S,
                        stream_timeout=STORAGE_TIMEOUT_S, key_prefix="foresight")


class RateLimiter:
    """A key's requests and tokens per minute, counted where ``storage`` lives."""

    def __init__(self, storage: Storage | None = None, *, on_error: Callable[[str], None] | None = None,
                 window_s: int = 60) -> None:
        self.storage = storage if storage is not None else MemoryStorage()
        self.requests = MovingWindowRateLimiter(self.storage)
        self.tokens = FixedWindowRateLimiter(self.storage)
        self.window_s = window_s  # 60 in service; a test may use a shorter one
        self.on_error = on_error or (lambda _op: None)
        self._last_warning = -math.inf
        self._down_until = -math.inf  # monotonic time until which the storage is not asked
        self._pending: dict[str, set[asyncio.Task[None]]] = {}  # token charges being written, by key

    def _item(self, per_window: int) -> RateLimitItem:
        if self.window_s == 60:
            return RateLimitItemPerMinute(per_window)
        return RateLimitItemPerSecond(per_window, self.window_s)

    async def admit(self, p: Principal) -> float | None:
        """None if admitted (one request counted), else the seconds to wait (for ``Retry-After``)."""
        if p.name is None or (p.requests_per_minute is None and p.tokens_per_minute is None):
            return None
        if time.monotonic() < self._down_until:
            self.on_error("admit")  # admitted unlimited, as the module docstring says
            return None
        try:
            return await asyncio.wait_for(self._admit(p, p.name), STORAGE_TIMEOUT_S * 2)
        except Exception as exc:  # storage down or slow: fail open (module docstring)
            self._failed("admit", exc)
            return None

    async def _admit(self, p: Principal, name: str) -> float | None:
        if p.tokens_per_minute is not None:
            await self._settled(name)  # this key's last request's tokens count before its next one
            item = self._item(p.tokens_per_minute)
            if not await self.tokens.test(item, "tokens", name):
                return await self._wait(self.tokens, item, "tokens", name)
        if p.requests_per_minute is not None:
            item = self._item(p.requests_per_minute)
            if not await self.requests.hit(item, "requests", name):
                return await self._wait(self.requests, item, "requests", name)
        return None

    @staticmethod
    async def _wait(strategy: MovingWindowRateLimiter | FixedWindowRateLimiter, item: RateLimitItem,
                    kind: str, name: str) -> float:
        stats = await strategy.get_window_stats(item, kind, name)
        return float(max(1, math.ceil(stats.reset_time - time.time())))

    def charge_tokens(self, p: Principal, tokens: int) -> None:
        """Add a finished request's ``tokens`` to the key's window (in the background: a request's
        end must not wait for Redis); ``drain`` waits for what is still being written."""
        if p.name is None or p.tokens_per_minute is None or tokens <= 0:
            return
        if time.monotonic() < self._down_until:
            self.on_error("charge")
            return
        task = asyncio.get_running_loop().create_task(self._charge(p.name, p.tokens_per_minute, tokens))
        pending = self._pending.setdefault(p.name, set())
        pending.add(task)
        task.add_done_callback(pending.discard)

    async def _charge(self, name: str, per_minute: int, tokens: int) -> None:
        try:
            await asyncio.wait_for(self.tokens.hit(self._item(per_minute), "tokens", name, cost=tokens),
                                   STORAGE_TIMEOUT_S * 2)
        except Exception as exc:
            self._failed("charge", exc)

    async def _settled(self, name: str) -> None:
        pending = self._pending.get(name)
        while pending:
            await asyncio.wait(set(pending))  # not gather: a caller timing out must not cancel the charges
        self._pending.pop(name, None)

    async def drain(self) -> None:
        """Wait for the token charges still being written."""
        for name in list(self._pending):
            await self._settled(name)

    def _failed(self, operation: str, exc: BaseException) -> None:
        self.on_error(operation)
        now = time.monotonic()
        self._down_until = now + STORAGE_RETRY_S
        if now - self._last_warning >= WARN_EVERY_S:
            self._last_warning = now
            log.warning("rate-limit storage failed (%s: %s): admitting requests without limits until it is "
                        "back (foresight_rate_limit_errors_total counts each)", operation,
                        str(exc) or type(exc).__name__)

    async def check(self) -> bool:
        """Whether the storage answers; if it does, it is asked again from now on (tests, operators)."""
        try:
            ok = bool(await asyncio.wait_for(self.storage.check(), STORAGE_TIMEOUT_S * 2))
        except Exception:
            return False
        if ok:
            self._down_until = -math.inf
        return ok

    async def close(self) -> None:
        await self.drain()
