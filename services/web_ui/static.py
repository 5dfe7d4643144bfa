"""Static assets: the UI's own files and plotly.js from the installed ``plotly`` package
(nothing is fetched from the internet). plotly.js is large and its content only changes with
the package, so browsers may keep it for a year; the UI's files are revalidated."""

from __future__ import annotations

import hashlib
from importlib.resources import files
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"
TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def plotly_js() -> Path:
    return Path(str(files("plotly") / "package_data" / "plotly.min.js"))


def _asset(path: Path, cache: str) -> web.Response:
    body = path.read_bytes()
    etag = hashlib.sha256(body).hexdigest()[:32]
    return web.Response(body=body, content_type=TYPES.get(path.suffix, "application/octet-stream"),
                        charset="utf-8" if path.suffix != ".svg" else None,
                        headers={"Cache-Control": cache, "ETag": f'"{etag}"',
                                 "X-Content-Type-Options": "nosniff"})


async def plotly(_request: web.Request) -> web.Response:
    return _asset(plotly_js(), "public, max-age=31536000, immutable")


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["file"]
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        raise web.HTTPNotFound()
    if request.headers.get("If-None-Match") == f'"{hashlib.sha256(path.read_bytes()).hexdigest()[:32]}"':
        raise web.HTTPNotModified()
    return _asset(path, "no-cache")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ui/static/plotly.min.js", plotly)
    app.router.add_get("/ui/static/{file}", asset)
