"""What the sync and async clients share: building requests from the wire models, reading answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from foresight_client.errors import APIConnectionError, APIStatusError, BadRequestError, status_error
from protocol.outcomes import OutcomeRequest
from protocol.plan import PlanRequest

M = TypeVar("M", bound=BaseModel)
DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Call:
    """One HTTP call: method, path, JSON body, query."""

    method: str
    path: str
    json: dict[str, Any] | None = None
    params: dict[str, Any] | None = None


def _valid(model: type[M], data: dict[str, Any]) -> M:
    """Checked here, before anything is sent: a bad value is a BadRequestError naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(x) for x in first.get("loc", ())) or None
        raise BadRequestError(f"{field}: {first.get('msg')}" if field else str(first.get("msg")),
                              status_code=400, type="invalid_request_error", param=field) from None


def plan_call(prompt: str | None, messages: list[dict[str, Any]] | None, params: dict[str, Any]) -> Call:
    """``POST /v1/plan``; only the parameters given are sent (the server fills in its defaults, within its
    limits)."""
    data = {k: v for k, v in {"prompt": prompt, "messages": messages, **params}.items() if v is not None}
    body = _valid(PlanRequest, data)
    return Call("POST", "/v1/plan", body.model_dump(mode="json", exclude_unset=True))


def outcome_call(plan_id: str, success: bool, observation: str | None, metadata: dict[str, Any] | None,
                 replace: bool) -> Call:
    body = _valid(OutcomeRequest, {"plan_id": plan_id, "success": success, "observation": observation,
                                   "metadata": metadata, "replace": replace})
    return Call("POST", "/v1/outcomes", body.model_dump(mode="json", exclude_none=True))


def calibration_call(domain: str | None, model: str | None = None) -> Call:
    params = {k: v for k, v in {"domain": domain, "model": model}.items() if v}
    return Call("GET", "/v1/calibration", params=params or None)


def headers(api_key: str | None) -> dict[str, str]:
    """Sent with each request (a caller's own http client is left as it was)."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def read(response: httpx.Response, model: type[M]) -> M:
    """The answer as ``model``, or the typed exception of its error body."""
    if response.status_code >= 400:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        raise status_error(response.status_code, body, response.headers)
    try:
        return model.model_validate(response.json())
    except ValueError as exc:  # not JSON, or not the expected answer (e.g. a proxy's page, or /v1 twice)
        raise APIStatusError(f"HTTP {response.status_code} from {response.request.url} is not a {model.__name__}: "
                             f"{response.text[:200]!r}", status_code=response.status_code) from exc


def unreachable(url: str, exc: httpx.HTTPError) -> APIConnectionError:
    return APIConnectionError(f"cannot reach {url}: {exc.__class__.__name__}: {exc}")
