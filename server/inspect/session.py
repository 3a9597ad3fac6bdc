"""The inspector's session: a key POSTed once to the login form becomes a signed, short-lived cookie
(HttpOnly, ``SameSite=Strict``, scoped to ``/inspect``) that names the key and its current secret's prefix —
never the key itself — so that rotating or revoking the key ends its sessions."""

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

    def issue(self, key_name: str, prefix: str = "") -> str:
        name = base64.urlsafe_b64encode(f"{key_name}\n{prefix}".encode()).decode()
        payload = f"{name}.{int(self._clock()) + self.ttl_s}"
        return f"{payload}.{self._sig(payload)}"

    def read(self, cookie: str | None) -> tuple[str, str] | None:
        """(key name, its secret's prefix) of a valid, unexpired cookie; None otherwise."""
        if not cookie or not cookie.isascii() or cookie.count(".") != 2:
            return None
        name, expires, sig = cookie.split(".")
        payload = f"{name}.{expires}"
        if not hmac.compare_digest(sig, self._sig(payload)) or not expires.isdigit():
            return None
        if int(expires) < self._clock():
            return None
        try:
            key_name, _, prefix = base64.urlsafe_b64decode(name.encode()).decode().partition("\n")
        except (ValueError, UnicodeDecodeError):
            return None
        return key_name, prefix
