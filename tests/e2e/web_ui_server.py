"""The HTTP server the web-UI tests drive: the stack's API server when it is there, otherwise an
aiohttp application with the same contract (store, token, data dir, public prefixes, and an
auth middleware that accepts the Bearer header or the ``sextant_token`` cookie)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

import services.web_ui
from services.web_ui.auth import authorised


@web.middleware
async def _auth(request: web.Request, handler):
    public = request.app.get("sextant.public_prefixes", [])
    if not any(request.path.startswith(p) for p in public) and not authorised(request):
        return web.json_response({"kind": "Status", "code": 401, "message": "Unauthorized"}, status=401)
    return await handler(request)


def build_app(store: Any, token: str, data_dir: Path | None, **extra: Any) -> web.Application:
    app = web.Application(middlewares=[_auth], client_max_size=4 * 1024 * 1024)
    app["sextant.store"] = store
    app["sextant.token"] = token
    app["sextant.data_dir"] = data_dir
    app["sextant.public_prefixes"] = []
    for key, value in extra.items():
        app[key] = value
    services.web_ui.setup(app)
    return app


class ServerThread:
    """Runs an aiohttp application on 127.0.0.1 in a background thread (for the browser tests)."""

    def __init__(self, app: web.Application):
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.runner = web.AppRunner(self.app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self.loop.run_forever()

    def start(self) -> str:
        self._thread.start()
        self._ready.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
