"""Who may call and how much: ``account`` (``authenticate``, then the request counted), a FastAPI dependency
on every ``/v1/*`` router."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from engine.base import Tenancy
from server.admission import Claim
from server.auth import ANONYMOUS, Principal
from server.deps import ServicesDep
from server.errors import Forbidden, TooManyRequests, Unauthorized
from server.services.usage import ANONYMOUS_KEY

MISSING_KEY = ("Missing API key: send 'Authorization: Bearer <key>'. An operator creates keys with "
               "`foresight keys create --name NAME`.")
WRONG_KEY = "Incorrect API key provided."


async def authenticate(request: Request, services: ServicesDep) -> Principal:
    """The caller's principal; 401 without a valid key, 429 past the key's rate limit."""
    principal = ANONYMOUS
    if services.settings.auth_enabled:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise Unauthorized(MISSING_KEY)
        found = await services.keyring.verify(key)  # a store that is down: 503 (server.errors)
        if found is None:
            raise Unauthorized(WRONG_KEY)
        principal = found
    wait = await services.limiter.admit(principal)
    if wait is not None:
        raise TooManyRequests(f"rate limit of key {principal.name!r} reached; retry in {wait:.0f} s",
                              retry_after=wait, code="rate_limit_exceeded")
    request.scope.setdefault("state", {})["principal"] = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]  # FastAPI runs it once a request


async def account(request: Request, services: ServicesDep, principal: PrincipalDep) -> AsyncIterator[None]:
    """Authenticate, then count the request in the usage ledger once it is over, under the model it ran on
    (the one its route resolved — ``state["tokens"].model``, :func:`server.deps.request_tokens` — or
    ``state["model"]``, the model an outcome's plan ran on; none for a request that names no model)."""
    try:
        yield
    finally:
        state = request.scope.get("state", {})
        tokens = state.get("tokens")
        services.usage.request(principal.name, tokens.model if tokens is not None else state.get("model"))


# the engine priority of each class (vLLM runs lower first)
PRIORITY = {"interactive": 0, "batch": 10}


async def tenancy(services: ServicesDep, principal: PrincipalDep) -> Tenancy:
    """What every engine call of this request carries: its app's prefix-cache salt
    (:meth:`server.auth.KeyRing.cache_salt`) and its key's class's engine priority."""
    return Tenancy(services.keyring.cache_salt(principal), PRIORITY.get(principal.priority_class, 0))


TenancyDep = Annotated[Tenancy, Depends(tenancy)]


async def require_admin(principal: PrincipalDep) -> Principal:
    """The caller, if its key is an admin key; else 403."""
    if not principal.is_admin:
        raise Forbidden(f"key {principal.name!r} is an app key: this needs an admin key", code="admin_required")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


SequenceCount = Callable[[Any, int], int]
"""How many engine sequences a request body holds at once, given the server's ``max_n``."""


def admission(count: SequenceCount) -> Any:
    """The admission dependency of a generating route whose body holds ``count(body, max_n)`` sequences:
    declared as ``dependencies=[admission(...)]``; it runs after authentication (it knows whose request it
    is), holds the request's sequences in the admission count until the request is over (a stream: until its
    last event is sent), and answers 429 with Retry-After when they do not fit."""

    async def admitted(request: Request, services: ServicesDep, principal: PrincipalDep) -> AsyncIterator[None]:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            body = None
        admission = services.admission
        sequences = min(count(body, services.settings.max_n), admission.capacity)
        key = principal.name or ANONYMOUS_KEY
        claim = Claim(key, sequences, principal.app or key, principal.priority_class == "batch",
                      principal.share_weight)
        refused = admission.admit(claim)
        if refused == "batch_share_full":
            raise TooManyRequests(f"batch-class keys hold {admission.batch_active} of the engine's "
                                  f"{admission.running} sequences, their share (batch_max_share) is "
                                  f"{admission.batch_cap}; retry shortly", retry_after=1, code=refused)
        if refused == "fair_share_full":
            raise TooManyRequests(f"app {claim.slot[1]!r} holds its fair share ({admission.fair_cap(claim)} "
                                  "sequences, by share weight) while other apps of its class wait; retry shortly",
                                  retry_after=1, code=refused)
        if refused is not None:
            raise TooManyRequests(f"the server is at capacity ({admission.running} sequences running, "
                                  f"{admission.capacity - admission.running} queued); retry shortly",
                                  retry_after=1, code="queue_full")
        try:
            yield
        finally:
            admission.release(claim)

    admitted.admission = True  # type: ignore[attr-defined]  # (how tests find it in a route's dependencies)
    return Depends(admitted)
