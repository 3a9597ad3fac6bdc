"""``/v1/keys``: key management for admin keys (an app key gets 403, ``admin_required``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query

from protocol.keys import (
    KeyCreateRequest,
    KeyEventList,
    KeyInfo,
    KeyList,
    KeyRotateRequest,
    KeySecret,
    KeyUpdateRequest,
)
from protocol.openai import ErrorResponse
from server.deps import KeysDep
from server.guards import AdminDep

router = APIRouter(prefix="/v1")
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 403, 503)}
NAME = Path(min_length=1, max_length=128)


@router.post("/keys", response_model=KeySecret, status_code=201,
             responses={**_ERRORS, 409: {"model": ErrorResponse}})
async def create_key(body: KeyCreateRequest, keys: KeysDep, admin: AdminDep) -> KeySecret:
    return await keys.create(body, actor=admin.name)


@router.get("/keys", response_model=KeyList, responses=_ERRORS)
async def list_keys(keys: KeysDep, _admin: AdminDep) -> KeyList:
    return await keys.list()


@router.get("/keys/events", response_model=KeyEventList, responses=_ERRORS)
async def key_events(keys: KeysDep, _admin: AdminDep,
                     limit: int = Query(default=100, ge=1, le=1000)) -> KeyEventList:
    return await keys.events(limit)


@router.post("/keys/{name}/rotate", response_model=KeySecret, responses={**_ERRORS, 404: {"model": ErrorResponse}})
async def rotate_key(keys: KeysDep, admin: AdminDep, body: KeyRotateRequest | None = None,
                     name: str = NAME) -> KeySecret:
    return await keys.rotate(name, (body or KeyRotateRequest()).grace_s, actor=admin.name)


@router.patch("/keys/{name}", response_model=KeyInfo, responses={**_ERRORS, 404: {"model": ErrorResponse}})
async def update_key(body: KeyUpdateRequest, keys: KeysDep, admin: AdminDep, name: str = NAME) -> KeyInfo:
    """Change a key's class, share weight, sharing group, domains, limits or expiry without rotating its secret."""
    return await keys.update(name, body, actor=admin.name)


@router.delete("/keys/{name}", response_model=KeyInfo, responses={**_ERRORS, 404: {"model": ErrorResponse}})
async def revoke_key(keys: KeysDep, admin: AdminDep, name: str = NAME) -> KeyInfo:
    return await keys.revoke(name, actor=admin.name)
