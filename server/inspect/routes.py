"""``/inspect``: the plan inspector — recent plans the caller may read, one plan drawn as its tree beside
its domain's reliability diagram. Server-rendered HTML (Jinja2, autoescaped: model text is untrusted), one
stylesheet, no script; a strict content-security policy on every answer.

The key is POSTed once to the login form and exchanged for a signed session cookie (see
:mod:`server.inspect.session`); it never appears in a URL or a log. With auth off, there is no login.
"""

from __future__ import annotations

import functools
import typing
from pathlib import Path

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from server.auth import ANONYMOUS, Principal, principal_of, usable
from server.deps import ServicesDep
from server.inspect.session import COOKIE, PATH
from server.inspect.views import reliability, tree
from server.services.errors import InvalidRequest, UnknownResource
from server.store.audit import OutcomeFilter

HERE = Path(__file__).parent
router = APIRouter(prefix=PATH, include_in_schema=False)
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined)
HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
OUTCOMES = ("success", "failure", "none")


def _page(name: str, status: int = 200, **context: object) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**context), status_code=status, headers=HEADERS)


async def _caller(request: Request, services: ServicesDep) -> Principal | None:
    if not services.settings.auth_enabled:
        return ANONYMOUS
    session = services.inspect_sessions.read(request.cookies.get(COOKIE))
    record = await services.store.get_key(session[0]) if session else None
    if record is None or not usable(record) or session is None or record.prefix != session[1]:
        return None  # unknown, revoked, expired or rotated since the login
    return principal_of(record)


def _same_site(request: Request) -> bool:
    """A form POST from this page, not from another site (login and logout CSRF)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.url.netloc}"


@router.get("", response_class=HTMLResponse)
async def plans_page(request: Request, services: ServicesDep, domain: str | None = None,
                     outcome: str | None = None, cursor: str | None = None) -> Response:
    principal = await _caller(request, services)
    if principal is None:
        return _page("login.html", error=None)
    if outcome is not None and outcome not in OUTCOMES:
        outcome = None
    query = functools.partial(services.audit.page, principal, domain=domain or None, since=None, until=None,
                              outcome=typing.cast(OutcomeFilter, outcome), limit=50)
    try:
        page = await query(cursor=cursor)
    except InvalidRequest:  # a cursor that is not ours: the first page
        page = await query(cursor=None)
    return _page("plans.html", who=principal, plans=page.data, next_cursor=page.next_cursor, domain=domain or "",
                 outcome=outcome or "", auth=services.settings.auth_enabled)


@router.get("/plans/{plan_id}", response_class=HTMLResponse)
async def plan_page(plan_id: str, request: Request, services: ServicesDep) -> Response:
    principal = await _caller(request, services)
    if principal is None:
        return RedirectResponse(PATH, status_code=303, headers=HEADERS)
    try:
        plan = await services.audit.get(plan_id, principal)
    except UnknownResource:
        return _page("missing.html", status=404, plan_id=plan_id)
    try:
        [summary] = await services.calibration.summaries(plan.domain, principal.may_use, model=plan.model)
        diagram = reliability(summary)
    except UnknownResource:
        diagram = None
    return _page("plan.html", who=principal, plan=plan, roots=tree(plan.candidates, plan.chosen), diagram=diagram,
                 auth=services.settings.auth_enabled)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, services: ServicesDep) -> Response:
    if not _same_site(request):
        return _page("login.html", status=403, error="Log in from this page.")
    form = await request.form()
    key = str(form.get("key") or "").strip()
    principal = await services.keyring.verify(key) if key else None
    if principal is None or principal.name is None:
        return _page("login.html", status=401, error="That key is not valid.")
    response = RedirectResponse(PATH, status_code=303, headers=HEADERS)
    record = await services.store.get_key(principal.name)
    response.set_cookie(COOKIE, services.inspect_sessions.issue(principal.name, record.prefix if record else ""),
                        max_age=services.inspect_sessions.ttl_s, path=PATH, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    if not _same_site(request):
        return _page("login.html", status=403, error="Log out from this page.")
    response = RedirectResponse(PATH, status_code=303, headers=HEADERS)
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")
    return response


@router.get("/static/style.css")
async def style() -> Response:
    return FileResponse(HERE / "static" / "style.css", media_type="text/css", headers=HEADERS)
