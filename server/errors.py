"""Exceptions of the server package and their OpenAI-style JSON bodies.

ServerError
 ├── SettingsError         a setting is invalid; start-up stops
 └── ApiError              a request fails with a 4xx/5xx and an OpenAI-style body
      ├── BadRequest           400: the request is malformed or out of range
      ├── ModelNotFound        404: the request names a model (base or adapter) that is not served
      ├── NotFound             404: the request names a resource (a plan) that does not exist
      ├── Conflict             409: the resource already exists (an outcome)
      ├── StoreDown            503: the outcome store is unreachable
      ├── Unauthorized         401: no or a wrong API key
      ├── Forbidden            403: the key's role or domains do not allow this (admin_required, domain_not_allowed)
      ├── TooManyRequests      429: queue full or the key's rate limit reached (with Retry-After)
      ├── RequestTimeout       504: the request ran past its deadline; its generation was aborted
      ├── NotReady             503: the model is loading or the server is draining
      ├── EngineUnavailable    503: the engine is dead
      └── ClientDisconnected   499: the client went away; its work was aborted (nobody reads the answer)

Lower-level errors (the store's, the engine's, the planner's, and the services' domain errors of
:mod:`server.services.errors`) become ``ApiError`` in one place, :data:`LOWER_ERRORS`: the app's exception
handlers use it, and so does :func:`map_errors` where a stream must answer in-band. Routes and
services let store, engine and planner errors rise.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import EngineDeadError, EngineRequestError
from planner.errors import InvalidPlanRequest
from server.services.errors import (
    AlreadyExists,
    DeadlineExceeded,
    InUse,
    InvalidRequest,
    NotAllowed,
    ServiceError,
    UnknownModel,
    UnknownResource,
)
from server.store.errors import OutcomeExists, PlanNotFound, StoreUnavailable

log = logging.getLogger("foresight.errors")


class ServerError(Exception):
    """Root of every error the server package raises."""


class SettingsError(ServerError):
    """A setting is invalid; start-up stops with this message."""


class ApiError(ServerError):
    """A request fails; carries its HTTP status and an OpenAI-style error body."""

    status_code = 500
    error_type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.error_type, self.code, self.param)


class BadRequest(ApiError):
    """400: the request is malformed or out of range."""

    status_code = 400
    error_type = "invalid_request_error"


class ModelNotFound(ApiError):
    """404: the request names a model (base or adapter) that is not served, as OpenAI answers."""

    status_code = 404
    error_type = "invalid_request_error"
    code = "model_not_found"


class NotFound(ApiError):
    """404: the request names a resource (a plan) that does not exist."""

    status_code = 404
    error_type = "not_found_error"


class Conflict(ApiError):
    """409: the resource already exists (an outcome for the plan)."""

    status_code = 409
    error_type = "conflict_error"


class StoreDown(ApiError):
    """503: the outcome store is unreachable; nothing was stored."""

    status_code = 503
    error_type = "service_unavailable"
    code = "store_unavailable"


class Unauthorized(ApiError):
    """401: no API key, or one that is unknown or revoked (the message never says which)."""

    status_code = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class Forbidden(ApiError):
    """403: the key is valid, but its role or domains do not allow this."""

    status_code = 403
    error_type = "permission_error"


class TooManyRequests(ApiError):
    """429: the queue is full or the key's rate limit is reached; carries Retry-After."""

    status_code = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: float = 1.0, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = max(1, int(retry_after + 0.999))


class RequestTimeout(ApiError):
    """504: the request ran past its deadline; its generation was aborted."""

    status_code = 504
    error_type = "timeout"
    code = "deadline_exceeded"


class NotReady(ApiError):
    """503: the model is loading or the server is draining."""

    status_code = 503
    error_type = "service_unavailable"


class EngineUnavailable(ApiError):
    """503: the engine is dead; the process is about to exit."""

    status_code = 503
    error_type = "service_unavailable"
    code = "engine_dead"


class ClientDisconnected(ApiError):
    """499: the client went away before the answer; its generation was aborted."""

    status_code = 499
    error_type = "client_closed_request"


LOWER_ERRORS: dict[type[Exception], Callable[[Any], ApiError]] = {
    StoreUnavailable: lambda e: StoreDown(f"the store is unavailable: {e}"),
    PlanNotFound: lambda e: NotFound(str(e), param="plan_id", code="plan_not_found"),
    OutcomeExists: lambda e: Conflict(str(e), param="plan_id", code="outcome_exists"),
    EngineDeadError: lambda e: EngineUnavailable(f"the engine is not available: {e}"),
    EngineRequestError: lambda e: BadRequest(str(e)),
    InvalidPlanRequest: lambda e: BadRequest(str(e), param=e.field),
    ServiceError: lambda e: BadRequest(e.message, param=e.param, code=e.code),
    InvalidRequest: lambda e: BadRequest(e.message, param=e.param, code=e.code),
    UnknownModel: lambda e: ModelNotFound(e.message, param=e.param, code=e.code),
    UnknownResource: lambda e: NotFound(e.message, param=e.param, code=e.code),
    AlreadyExists: lambda e: Conflict(e.message, param=e.param, code=e.code),
    InUse: lambda e: Conflict(e.message, param=e.param, code=e.code),
    NotAllowed: lambda e: Forbidden(e.message, param=e.param, code=e.code),
    DeadlineExceeded: lambda e: RequestTimeout(e.message, param=e.param, code=e.code),
}
"""Store, engine, planner and service errors as the API errors they answer with: the one mapping (a
:class:`ServiceError` not named here answers 400)."""


def to_api_error(exc: Exception) -> ApiError | None:
    """``exc`` as the API error it answers with, or None if it is not a known lower-level error."""
    if isinstance(exc, ApiError):
        return exc
    for kind in type(exc).__mro__:
        make = LOWER_ERRORS.get(kind)  # type: ignore[call-overload]
        if make is not None:
            return make(exc)
    return None


@contextlib.contextmanager
def map_errors() -> Iterator[None]:
    """Raise lower-level errors as their API errors (for code that answers in-band, like a stream)."""
    try:
        yield
    except Exception as exc:
        api = to_api_error(exc)
        if api is None or api is exc:
            raise
        raise api from exc


def error_body(message: str, type_: str, code: str | int | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code, "param": param}}


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    loc = [str(x) for x in first.get("loc", ()) if x != "body"]
    field = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON", None
    if first.get("type") == "missing" and not loc:
        return "the request needs a JSON body", None
    msg = first.get("msg", "invalid value")
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return (f"{field}: {msg}{more}" if field else f"{msg}{more}"), field


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as an OpenAI-style JSON body; never a stack trace."""

    async def _lower(request: Request, exc: Exception) -> JSONResponse:
        api = to_api_error(exc)
        return await _api_error(request, api) if api is not None else await _unexpected(request, exc)

    for kind in LOWER_ERRORS:
        app.add_exception_handler(kind, _lower)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = None
        if exc.status_code == 503:
            headers = {"Retry-After": "5"}
        elif isinstance(exc, TooManyRequests):
            headers = {"Retry-After": str(exc.retry_after)}
        elif exc.status_code == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, field = _validation_message(exc)
        return JSONResponse(error_body(message, "invalid_request_error", None, field), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(
            error_body(str(exc.detail), type_, exc.status_code), status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(error_body("internal server error", "server_error"), status_code=500)
