"""The inspector's session: a key POSTed once to the login form becomes a signed, short-lived cookie
(HttpOnly, ``SameSite=Strict``, scoped to ``/inspect``) that names the key — never the key itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable

COOKIE = "foresight_inspect"
PATH = "/inspect"
TTL_S = 3600


class SessionSigner:
    """Signs and reads session cookies with a secret derived from the server's key secret."""

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time, ttl_s: int = TTL_S) -> None:
        self._key = hmac.new(secret, b"foresight-inspect-session", hashlib.sha256).digest()
        self._clock = clock
        self.ttl_s = ttl_s

    def _sig(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def issue(self, key_name: str) -> str:
        name = base64.urlsafe_b64encode(key_name.encode()).decode()
        payload = f"{name}.{int(self._clock()) + self.ttl_s}"
        return f"{payload}.{self._sig(payload)}"

    def read(self, cookie: str | None) -> str | None:
        """The key name a valid, unexpired cookie names; None otherwise."""
        if not cookie or cookie.count(".") != 2:
            return None
        name, expires, sig = cookie.split(".")
        payload = f"{name}.{expires}"
        if not hmac.compare_digest(sig, self._sig(payload)) or not expires.isdigit():
            return None
        if int(expires) < self._clock():
            return None
        try:
            return base64.urlsafe_b64decode(name.encode()).decode()
        except (ValueError, UnicodeDecodeError):
            return None
