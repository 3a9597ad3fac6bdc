"""What the services say went wrong with a request: domain errors, with no HTTP in them.

ServiceError
 ├── InvalidRequest      the request is malformed or out of range (``param`` names the field)
 │    └── UnknownModel   the request names a model that is not served
 ├── UnknownResource     the request names a plan or a key that does not exist (or that the caller may not see)
 ├── AlreadyExists       the resource exists already (a key's name)
 ├── InUse               the resource is in use and cannot be removed (the default model's adapter)
 ├── NotAllowed          the caller's role or domains do not allow this
 └── DeadlineExceeded    the work ran past its deadline; its generation was aborted

Services raise these; :data:`server.errors.LOWER_ERRORS`, the one mapping, turns them into HTTP answers.
No service imports an HTTP error class (``tests/unit/server/test_error_map.py`` keeps it so).
"""

from __future__ import annotations


class ServiceError(Exception):
    """Root of the services' domain errors: a message, the field it is about and a machine-readable code."""

    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(ServiceError):
    """The request is malformed or out of range."""


class UnknownModel(InvalidRequest):
    """The request names a model that is not served."""

    code = "model_not_found"


class UnknownResource(ServiceError):
    """The request names a resource (a plan, a key) that does not exist, or one the caller may not see."""


class AlreadyExists(ServiceError):
    """The resource exists already."""


class InUse(ServiceError):
    """The resource is in use and cannot be removed."""


class NotAllowed(ServiceError):
    """The caller's role or domains do not allow this."""


class DeadlineExceeded(ServiceError):
    """The work ran past its deadline; its generation was aborted."""

    code = "deadline_exceeded"
