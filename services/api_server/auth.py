"""Bearer-token authentication for the API server and the web UI it hosts.

A request is let in with ``Authorization: Bearer <token>`` or a ``sextant_token`` cookie
holding the token (the browser's way); the comparison takes constant time. Health checks and
the paths in ``app["sextant.public_prefixes"]`` (the UI's login page and static files) need
no token. Anything else gets a 401 ``Status``."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from services.api_server.errors import unauthorized

COOKIE = "sextant_token"
OPEN_PATHS = ("/healthz", "/readyz", "/livez")


def presented_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE, "")


def is_public(request: web.Request) -> bool:
    path = request.path
    if path in OPEN_PATHS:
        return True
    return any(path.startswith(prefix) for prefix in request.app.get("sextant.public_prefixes") or ())


def authorized(request: web.Request) -> bool:
    expected = request.app["sextant.token"] or ""
    given = presented_token(request)
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


@web.middleware
async def auth_middleware(request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    if is_public(request) or authorized(request):
        return await handler(request)
    raise unauthorized()
