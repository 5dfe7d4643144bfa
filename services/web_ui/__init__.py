"""Sextant's web UI, served by the stack's HTTP server (``services.api_server``).

``setup(app)`` adds the pages, the UI's JSON endpoints under ``/ui/api/`` and the static
assets under ``/ui/static/`` to an aiohttp application that already carries
``app["sextant.store"]``, ``app["sextant.token"]`` and ``app["sextant.data_dir"]``.
"""

from __future__ import annotations

from aiohttp import web

from services.web_ui import api, login, pages, static

PUBLIC_PREFIXES = ("/ui/static/", login.LOGIN)


def setup(app: web.Application) -> None:
    public = app.setdefault("sextant.public_prefixes", [])
    public.extend(p for p in PUBLIC_PREFIXES if p not in public)
    # First in line, so a browser without the cookie gets the login page rather than a 401.
    app.middlewares.insert(0, login.login_middleware)
    app.router.add_get("/", pages.experiments)
    app.router.add_get("/ui/create", pages.create)
    app.router.add_get("/ui/compare", pages.compare)
    app.router.add_get("/ui/services", pages.services)
    app.router.add_get("/ui/experiments/{namespace}/{name}", pages.experiment)
    app.router.add_get("/ui/trials/{namespace}/{name}", pages.trial)
    app.router.add_get(login.LOGIN, login.login_form)
    app.router.add_post(login.LOGIN, login.login_submit)
    app.router.add_get("/ui/logout", login.logout)
    api.add_routes(app)
    static.add_routes(app)
