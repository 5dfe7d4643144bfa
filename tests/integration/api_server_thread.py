"""Sextant's Kubernetes API server in a thread of the test process, over HTTPS on 127.0.0.1,
on any ResourceStore, with a kubeconfig for the real ``kubernetes`` client."""

from __future__ import annotations

import asyncio
import secrets
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from services.api_server.__main__ import ssl_context
from services.api_server.app import build_app
from sextant.kubeconfig import write_kubeconfig
from sextant.tls import ensure_tls


@dataclass
class ApiServer:
    url: str
    kubeconfig: Path
    token: str
    app: web.Application


@contextmanager
def api_server_thread(store: Any, directory: Path) -> Iterator[ApiServer]:
    token = secrets.token_hex(16)
    files = ensure_tls(directory / "tls")
    app = build_app(store, token=token, data_dir=directory)
    loop = asyncio.new_event_loop()
    state: dict[str, Any] = {}
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        context: ssl.SSLContext = ssl_context(str(files.cert), str(files.key))
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        loop.run_until_complete(site.start())
        state["runner"] = runner
        state["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="api-server", daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the API server did not start")
    app["sextant.watch_hub"].wait_ready(10)
    url = f"https://127.0.0.1:{state['port']}"
    kubeconfig = write_kubeconfig(directory, url, files.ca_cert.read_bytes(), token)
    try:
        yield ApiServer(url, kubeconfig, token, app)
    finally:
        asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
