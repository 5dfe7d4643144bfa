"""Jupyter-style access to the UI: the URL ``sextant up`` prints carries the token once, the
server swaps it for an HttpOnly cookie and redirects to the same page without it; a browser
without the cookie is sent to a small page that asks for the token.

The API server's own middleware authorises every request (Bearer header or the
``sextant_token`` cookie). This middleware runs before it and only changes what a *browser
navigating to a page* sees: a redirect to the login page instead of a bare 401, and the
``?token=`` exchange. API calls are left to the API server.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import web

COOKIE = "sextant_token"
LOGIN = "/ui/login"
TOKEN_KEY = "sextant.token"
COOKIE_MAX_AGE = 30 * 24 * 3600


def token_matches(app: web.Application, given: str | None) -> bool:
    expected = app.get(TOKEN_KEY)
    if not expected:
        return True  # a server started without a token lets everyone in; so does the UI
    if not given:
        return False
    return hmac.compare_digest(given.encode(), str(expected).encode())


def authorised(request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
    return token_matches(request.app, bearer) or token_matches(request.app, request.cookies.get(COOKIE))


def is_page(request: web.Request) -> bool:
    """A top-level page the UI serves (not an API call, not a static asset)."""
    path = request.path
    return request.method == "GET" and (path == "/" or (
        path.startswith("/ui/") and not path.startswith(("/ui/api/", "/ui/static/", LOGIN))))


def safe_next(target: str | None) -> str:
    """Only a path on this server: never ``//host`` or ``https://...`` (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def signed_in(request: web.Request, target: str) -> web.HTTPSeeOther:
    """The redirect (to raise) that sets the cookie and lands on ``target``."""
    response = web.HTTPSeeOther(safe_next(target))
    response.set_cookie(COOKIE, str(request.app.get(TOKEN_KEY) or ""), httponly=True, samesite="Strict",
                        secure=request.secure, path="/", max_age=COOKIE_MAX_AGE)
    return response


@web.middleware
async def login_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    if is_page(request):
        token = request.query.get("token")
        if token is not None:
            if token_matches(request.app, token):
                rest = {k: v for k, v in request.query.items() if k != "token"}
                raise signed_in(request, request.path + (f"?{urlencode(rest)}" if rest else ""))
            raise web.HTTPSeeOther(f"{LOGIN}?{urlencode({'next': request.path, 'error': '1'})}")
        if not authorised(request):
            raise web.HTTPSeeOther(f"{LOGIN}?{urlencode({'next': request.path_qs})}")
    return await handler(request)


async def login_form(request: web.Request) -> web.Response:
    from services.web_ui.pages import login_page

    token = request.query.get("token")
    target = request.query.get("next", "/")
    if token is not None and token_matches(request.app, token):
        raise signed_in(request, target)
    failed = token is not None or request.query.get("error") == "1"
    return login_page(target, failed)


async def login_submit(request: web.Request) -> web.Response:
    from services.web_ui.pages import login_page

    form = await request.post()
    token = str(form.get("token", ""))
    target = str(form.get("next", "/"))
    if token_matches(request.app, token):
        raise signed_in(request, target)
    return login_page(target, failed=True, status=401)


async def logout(request: web.Request) -> web.Response:
    response = web.HTTPSeeOther(LOGIN)
    response.del_cookie(COOKIE, path="/")
    raise response
