"""API keys managed by admins over HTTP (``/v1/keys``): create, list, rotate, revoke, and the log of those
actions. The command line (``foresight keys``) does the same on the store directly."""

from __future__ import annotations

from collections.abc import Callable

from protocol.keys import (
    KeyCreateRequest,
    KeyEventInfo,
    KeyEventList,
    KeyInfo,
    KeyList,
    KeySecret,
    KeyUpdateRequest,
)
from server.auth import display_prefix, generate_key, hash_key
from server.services.audit import utc
from server.services.errors import AlreadyExists, UnknownResource
from server.store import KeyExists, KeyRecord, Store


def key_info(k: KeyRecord) -> KeyInfo:
    return KeyInfo(name=k.name, prefix=k.prefix, role=k.role, domains=list(k.domains), created_at=k.created_at,
                   expires_at=k.expires_at, revoked_at=k.revoked_at, requests_per_minute=k.requests_per_minute,
                   tokens_per_minute=k.tokens_per_minute, priority_class=k.priority_class,
                   share_weight=k.share_weight, sharing_group=k.sharing_group)


class KeyService:
    """Issues and withdraws keys; ``on_change`` forgets verified keys (this replica's cache) at once."""

    def __init__(self, store: Store, secret: bytes, on_change: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self._secret = secret
        self._on_change = on_change

    async def create(self, req: KeyCreateRequest, actor: str | None) -> KeySecret:
        key = generate_key()
        expires = utc(req.expires_at, "expires_at")
        try:
            record = await self.store.create_key(
                req.name, display_prefix(key), hash_key(key, self._secret), role=req.role, domains=req.domains,
                requests_per_minute=req.requests_per_minute, tokens_per_minute=req.tokens_per_minute,
                expires_at=expires, actor=actor, priority_class=req.priority_class, share_weight=req.share_weight,
                sharing_group=req.sharing_group)
        except KeyExists as exc:
            raise AlreadyExists(str(exc), param="name", code="key_exists") from None
        return KeySecret(key=key, info=key_info(record))

    async def rotate(self, name: str, grace_s: float, actor: str | None) -> KeySecret:
        key = generate_key()
        record = await self.store.rotate_key(name, display_prefix(key), hash_key(key, self._secret),
                                             grace_s=grace_s, actor=actor)
        if record is None:
            raise UnknownResource(f"no active key named {name!r}", param="name", code="key_not_found")
        self._on_change()
        return KeySecret(key=key, info=key_info(record))

    async def update(self, name: str, req: KeyUpdateRequest, actor: str | None) -> KeyInfo:
        """Change a key in place (its secret untouched); the key as it now is."""
        changes = req.changes()
        if "expires_at" in changes:
            changes["expires_at"] = utc(changes["expires_at"], "expires_at")
        record = await self.store.update_key(name, changes, actor=actor)
        if record is None:
            raise UnknownResource(f"no active key named {name!r}", param="name", code="key_not_found")
        self._on_change()
        return key_info(record)

    async def revoke(self, name: str, actor: str | None) -> KeyInfo:
        """Revoke; the key as it now is (with ``revoked_at``)."""
        if not await self.store.revoke_key(name, actor=actor):
            raise UnknownResource(f"no active key named {name!r}", param="name", code="key_not_found")
        self._on_change()
        record = await self.store.get_key(name)
        assert record is not None  # just revoked, never deleted
        return key_info(record)

    async def list(self) -> KeyList:
        return KeyList(data=[key_info(k) for k in await self.store.list_keys()])

    async def events(self, limit: int) -> KeyEventList:
        return KeyEventList(data=[KeyEventInfo(at=e.at, actor=e.actor, action=e.action, key_name=e.key_name,
                                               detail=e.detail) for e in await self.store.key_events(limit)])
