"""API keys and per-key rate limits.

A key is ``fsk-`` + 43 random URL-safe characters, shown once when it is created. The store keeps
only its HMAC-SHA256 under a server secret (``auth_secret``, or a random secret generated once into
``auth_secret_file`` with mode 0600), so a leaked database reveals no usable key. A presented key is
hashed and looked up by its hash; the stored hash is then compared with :func:`hmac.compare_digest`.
Verified keys are cached for ``auth_cache_ttl_s`` (revocation takes effect within it; while the
store is down, cached keys keep working and unknown ones get 503).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from server.store import KeyRecord, Store

KEY_PREFIX = "fsk-"


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str, secret: bytes) -> str:
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def display_prefix(key: str) -> str:
    """What listings show of a key: enough to tell keys apart, useless to an attacker."""
    return key[: len(KEY_PREFIX) + 4]


def load_secret(secret: str | None, secret_file: str | Path) -> bytes:
    """The HMAC secret: the setting if given, else the file (created with 0600 on first use)."""
    if secret:
        return secret.encode()
    path = Path(secret_file)
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(value)
    return value


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's name, limits, role and domains (``name=None`` when auth is off: then the
    caller may do anything, as an admin)."""

    name: str | None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    role: str = "app"
    domains: tuple[str, ...] = ("*",)
    priority_class: str = "interactive"
    share_weight: float = 1.0
    app: str | None = None  # the app it counts as: its key's sharing group, else its name

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_use(self, domain: str) -> bool:
        """Whether this caller may plan in, report on and read ``domain``."""
        return self.is_admin or "*" in self.domains or domain in self.domains

    @property
    def only_domain(self) -> str | None:
        """The domain a plan without one goes to: an app key's, when it has exactly one."""
        if self.is_admin or len(self.domains) != 1 or self.domains[0] == "*":
            return None
        return self.domains[0]

    @property
    def owner(self) -> str | None:
        """Whose plans this caller may see: its own, or everyone's (None) for an admin."""
        return None if self.is_admin else self.name


ANONYMOUS = Principal(None, role="admin")


class KeyRing:
    """Verifies presented keys against the store, with a short cache."""

    def __init__(self, store: Store, secret: bytes, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self._secret = secret
        self._ttl = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    def cache_salt(self, principal: Principal) -> str | None:
        """The prefix-cache salt of the caller's app (its key's sharing group, else its name), keyed with the
        server secret so no client can compute another app's: only requests of one app share cache blocks.
        None with auth off (one trust domain: one shared cache). A client's own ``cache_salt`` is never used."""
        app = principal.app or principal.name
        if app is None:
            return None
        return hmac.new(self._secret, b"prefix-cache:" + app.encode(), hashlib.sha256).hexdigest()[:32]

    def forget_all(self) -> None:
        """Drop every verified key (after a revocation or rotation here: it takes effect at once)."""
        self._cache.clear()

    async def verify(self, key: str) -> Principal | None:
        """The key's principal, or None for an unknown or revoked key. Raises StoreUnavailable."""
        digest = hash_key(key, self._secret)
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            found = await self.store.find_key(digest)
        except Exception:
            if cached is not None and cached[1] is not None:  # the store is down: trust what was verified
                return cached[1]
            raise
        principal = None
        if found is not None:
            record, stored = found
            if hmac.compare_digest(stored, digest) and record.revoked_at is None and not _expired(record):
                principal = principal_of(record)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now, principal)
        return principal


def principal_of(record: KeyRecord) -> Principal:
    """The principal of a stored key (whether it may still be used: :func:`usable`)."""
    return Principal(record.name, record.requests_per_minute, record.tokens_per_minute, record.role,
                     record.domains, record.priority_class, record.share_weight, record.app)


def usable(record: KeyRecord) -> bool:
    """Not revoked and not expired."""
    return record.revoked_at is None and not _expired(record)


def _expired(record: KeyRecord) -> bool:
    if record.expires_at is None:
        return False
    at = record.expires_at if record.expires_at.tzinfo else record.expires_at.replace(tzinfo=dt.UTC)
    return at <= dt.datetime.now(dt.UTC)
