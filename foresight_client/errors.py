"""Exceptions of the client: the server's error body as a typed exception.

ForesightError
 ├── APIConnectionError      the server could not be reached (or the request timed out on the way)
 └── APIStatusError          the server answered with an error body ``{"error": {message, type, code, param}}``
      ├── BadRequestError         400: the request is malformed or out of range (``param`` names the field)
      ├── AuthenticationError     401: no or a wrong API key
      ├── NotFoundError           404: an unknown plan
      ├── ConflictError           409: the plan already has an outcome
      ├── RateLimitError          429: the queue is full or the key's limit is reached (``retry_after``)
      ├── ServiceUnavailableError 503: loading, draining, the engine or the store is down
      └── DeadlineExceededError   504: the plan ran past its deadline
"""

from __future__ import annotations

from typing import Any


class ForesightError(Exception):
    """Root of every error the client raises."""


class APIConnectionError(ForesightError):
    """The server could not be reached, or the request timed out on the way."""


class APIStatusError(ForesightError):
    """The server answered with an error: its status, message, type, code and param."""

    status_code = 0

    def __init__(self, message: str, *, status_code: int, type: str | None = None, code: str | int | None = None,
                 param: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.type = type
        self.code = code
        self.param = param
        self.retry_after = retry_after


class BadRequestError(APIStatusError):
    """400: the request is malformed or out of range; ``param`` names the field."""


class AuthenticationError(APIStatusError):
    """401: no API key, or one that is unknown or revoked."""


class NotFoundError(APIStatusError):
    """404: the server knows no such plan."""


class ConflictError(APIStatusError):
    """409: the plan already has an outcome (send ``replace=True`` to overwrite it)."""


class RateLimitError(APIStatusError):
    """429: the server's queue is full or the key's rate limit is reached; see ``retry_after``."""


class ServiceUnavailableError(APIStatusError):
    """503: the model is loading, the server is draining, or the engine or the store is down."""


class DeadlineExceededError(APIStatusError):
    """504: the plan ran past its deadline; its generation was aborted."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError, 401: AuthenticationError, 404: NotFoundError, 409: ConflictError, 429: RateLimitError,
    503: ServiceUnavailableError, 504: DeadlineExceededError,
}


def status_error(status: int, body: Any, headers: Any = None) -> APIStatusError:
    """The typed exception for an error response (any body: a proxy's HTML page still gives a clear error)."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        err = {"message": f"HTTP {status}: {str(body)[:200]}"}
    retry = headers.get("retry-after") if headers is not None else None
    kind = _BY_STATUS.get(status, APIStatusError)
    return kind(str(err.get("message") or f"HTTP {status}"), status_code=status, type=err.get("type"),
                code=err.get("code"), param=err.get("param"),
                retry_after=float(retry) if retry and str(retry).replace(".", "", 1).isdigit() else None)
