"""Rate limits through the ``limits`` library: in memory, and in a real Redis shared by two limiters
(two replicas), including Redis going away under load (fail open, counted) and coming back."""

from __future__ import annotations

import asyncio
import logging

import pytest

from server.auth import Principal
from server.config import Settings
from server.errors import SettingsError
from server.ratelimit import RateLimiter, open_storage, storage_uri
from tests.redis_server import RedisServer


async def test_requests_per_minute_refuse_past_the_limit_and_name_the_wait() -> None:
    limiter = RateLimiter()
    p = Principal("k", requests_per_minute=2)
    assert await limiter.admit(p) is None and await limiter.admit(p) is None
    wait = await limiter.admit(p)
    assert wait is not None and 1 <= wait <= 60
    assert await limiter.admit(Principal("other", requests_per_minute=2)) is None  # per key
    assert await limiter.admit(Principal(None)) is None  # auth off: no limits


async def test_the_moving_window_frees_a_slot_when_the_oldest_request_leaves_it() -> None:
    limiter = RateLimiter(window_s=1)
    p = Principal("k", requests_per_minute=2)
    assert await limiter.admit(p) is None and await limiter.admit(p) is None
    assert await limiter.admit(p) is not None
    await asyncio.sleep(1.1)
    assert await limiter.admit(p) is None


async def test_tokens_are_charged_after_the_request_and_may_overdraw_one_window() -> None:
    limiter = RateLimiter(window_s=1)
    p = Principal("k", requests_per_minute=100, tokens_per_minute=10)
    assert await limiter.admit(p) is None
    limiter.charge_tokens(p, 13)  # known only now; carries the window past its 10
    wait = await limiter.admit(p)  # sees the charge (this key's charges settle before its next admit)
    assert wait is not None and wait >= 1
    stats = await limiter.requests.get_window_stats(limiter._item(100), "requests", "k")
    assert stats.remaining == 99, "a request refused for its tokens costs no request slot"
    await asyncio.sleep(1.1)  # the overdraft is not carried into the next window
    assert await limiter.admit(p) is None


async def test_one_keys_limits_hold_across_two_replicas_sharing_redis(redis: RedisServer) -> None:
    a, b = RateLimiter(open_storage(redis.url)), RateLimiter(open_storage(redis.url))
    p = Principal("shared-rpm", requests_per_minute=5)
    admitted = [await (a if i % 2 else b).admit(p) is None for i in range(12)]
    assert sum(admitted) == 5 and admitted[:5] == [True] * 5
    q = Principal("shared-tpm", tokens_per_minute=100)
    assert await a.admit(q) is None
    a.charge_tokens(q, 150)
    await a.drain()
    assert await b.admit(q) is not None, "tokens charged on one replica count on the other"


async def test_redis_going_away_under_load_fails_open_loudly_and_limits_resume(
        redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    errors: list[str] = []
    limiter = RateLimiter(open_storage(redis.url), on_error=errors.append)
    p = Principal("outage", requests_per_minute=1000)
    assert await limiter.admit(p) is None
    redis.stop()
    try:
        with caplog.at_level(logging.WARNING, "foresight.ratelimit"):
            results = await asyncio.gather(*(limiter.admit(p) for _ in range(20)))
        assert results == [None] * 20, "Redis down: admitted (fail open), not refused"
        assert errors.count("admit") == 20
        assert assert_one_warning(caplog)
        assert not await limiter.check()
    finally:
        redis.start()
    tight = Principal("after-outage", requests_per_minute=1)
    for _ in range(50):  # the client reconnects on its own
        if await limiter.check():
            break
        await asyncio.sleep(0.1)
    assert await limiter.admit(tight) is None
    assert await limiter.admit(tight) is not None, "limits hold again once Redis is back"


def assert_one_warning(caplog: pytest.LogCaptureFixture) -> bool:
    warnings = [r for r in caplog.records if "rate-limit storage failed" in r.getMessage()]
    return len(warnings) == 1  # once per 30 s, not once per request


def test_redis_url_is_checked() -> None:
    assert storage_uri(None) == "async+memory://"
    assert storage_uri("redis://r:6379/0") == "async+redis://r:6379/0"
    with pytest.raises(ValueError, match="redis://"):
        storage_uri("http://r:6379")
    with pytest.raises((SettingsError, ValueError), match="redis_url"):
        Settings(redis_url="http://r:6379")
