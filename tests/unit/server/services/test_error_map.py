"""Services raise domain errors; the one map (``LOWER_ERRORS``) answers them in HTTP. No service imports an
HTTP error class, and every domain error has its answer."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from server import errors
from server.services import errors as domain

SERVICES = Path(__file__).resolve().parents[4] / "server" / "services"
HTTP_ERRORS = {name for name, obj in vars(errors).items() if inspect.isclass(obj) and issubclass(obj, errors.ApiError)}


def test_no_service_imports_an_http_error_class() -> None:
    found = []
    for path in sorted(SERVICES.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "server.errors":
                found += [f"{path.name}: {a.name}" for a in node.names]
            if isinstance(node, ast.Import) and any(a.name == "server.errors" for a in node.names):
                found.append(f"{path.name}: server.errors")
    assert found == [], "services raise server.services.errors' domain errors; LOWER_ERRORS maps them"
    assert "ApiError" in HTTP_ERRORS and "BadRequest" in HTTP_ERRORS  # the check looks at the right names


@pytest.mark.parametrize(("error", "status", "code"), [
    (domain.InvalidRequest("bad n", param="n", code="too_big"), 400, "too_big"),
    (domain.UnknownModel("no such model", param="model"), 404, "model_not_found"),
    (domain.UnknownResource("no such plan", param="plan_id", code="plan_not_found"), 404, "plan_not_found"),
    (domain.AlreadyExists("taken", param="name", code="key_exists"), 409, "key_exists"),
    (domain.NotAllowed("not yours", param="domain", code="domain_not_allowed"), 403, "domain_not_allowed"),
    (domain.DeadlineExceeded("too slow"), 504, "deadline_exceeded"),
])
def test_every_domain_error_answers_with_its_status_and_keeps_param_and_code(error: domain.ServiceError, status: int,
                                                                            code: str) -> None:
    api = errors.to_api_error(error)
    assert api is not None
    assert (api.status_code, api.code, api.param, api.message) == (status, code, error.param, error.message)


def test_every_domain_error_class_is_mapped() -> None:
    classes = [c for c in vars(domain).values() if inspect.isclass(c) and issubclass(c, domain.ServiceError)]
    assert set(classes) <= set(errors.LOWER_ERRORS)
