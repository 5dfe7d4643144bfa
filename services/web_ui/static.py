"""Static assets: the UI's own files, the full plotly.js from the installed ``plotly`` package
and its small cartesian bundle vendored in ``static/vendor`` (nothing is fetched from the
internet). Both plotly.js files are large and change only with a new version, which is in their
URLs, so browsers may keep them for a year; the UI's files are revalidated (ETag).

Each file is read, hashed and gzip-compressed once per version of the file (plotly.js shrinks
from 4.6 MB to 1.4 MB), not on every request.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
from dataclasses import dataclass
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"
PLOTS = STATIC / "plots"
VENDOR = STATIC / "vendor"
CARTESIAN_PLOTLY = "plotly-cartesian-3.7.0.min.js"  # see static/vendor/README.md
TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
PLOTLY_CACHE = "public, max-age=31536000, immutable"
OWN_CACHE = "no-cache"  # kept, but asked about (If-None-Match) before each use


def plotly_js() -> Path:
    return Path(str(files("plotly") / "package_data" / "plotly.min.js"))


def plotly_urls() -> tuple[str, str]:
    """The URLs of the cartesian and the full plotly.js, each naming its version."""
    return f"/ui/static/vendor/{CARTESIAN_PLOTLY}", f"/ui/static/plotly.min.js?v={version('plotly')}"


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str
    content_type: str


@functools.lru_cache(maxsize=16)
def _load(path: Path, _mtime_ns: int) -> Asset:
    body = path.read_bytes()
    return Asset(body=body, gzipped=gzip.compress(body, compresslevel=6, mtime=0),
                 etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"',
                 content_type=TYPES.get(path.suffix, "application/octet-stream"))


def load(path: Path) -> Asset:
    """The file's bytes, compressed bytes and ETag, read again only when the file changes."""
    return _load(path, path.stat().st_mtime_ns)


def _accepts_gzip(request: web.Request) -> bool:
    return any(part.split(";")[0].strip() == "gzip" for part in request.headers.get("Accept-Encoding", "").split(","))


async def respond(request: web.Request, path: Path, cache: str) -> web.Response:
    asset = await asyncio.to_thread(load, path)  # compressing plotly.js the first time takes a while
    headers = {"Cache-Control": cache, "ETag": asset.etag, "X-Content-Type-Options": "nosniff",
               "Vary": "Accept-Encoding"}
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304, headers=headers)
    body = asset.body
    if _accepts_gzip(request) and len(asset.gzipped) < len(asset.body):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    charset = "utf-8" if path.suffix != ".svg" else None
    return web.Response(body=body, content_type=asset.content_type, charset=charset, headers=headers)


async def plotly(request: web.Request) -> web.Response:
    return await respond(request, plotly_js(), PLOTLY_CACHE)


def _own_file(folder: Path, name: str) -> Path:
    path = folder / name
    if "/" in name or "\\" in name or name.startswith(".") or not path.is_file():
        raise web.HTTPNotFound()
    return path


async def asset(request: web.Request) -> web.Response:
    return await respond(request, _own_file(STATIC, request.match_info["file"]), OWN_CACHE)


async def vendored(request: web.Request) -> web.Response:
    return await respond(request, _own_file(VENDOR, request.match_info["file"]), PLOTLY_CACHE)


async def plot_script(request: web.Request) -> web.Response:
    return await respond(request, _own_file(PLOTS, request.match_info["file"]), OWN_CACHE)


def plot_scripts() -> list[str]:
    """The URLs of the experiment page's plots, one script per plot (``static/plots/*.js``)."""
    return [f"/ui/static/plots/{p.name}" for p in sorted(PLOTS.glob("*.js"))]


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ui/static/plotly.min.js", plotly)
    app.router.add_get("/ui/static/plots/{file}", plot_script)
    app.router.add_get("/ui/static/vendor/{file}", vendored)
    app.router.add_get("/ui/static/{file}", asset)
