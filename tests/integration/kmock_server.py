"""A kmock Kubernetes API emulator on a loopback port, for the real (synchronous) kubernetes client.

kmock is asyncio-based; the kubernetes client is blocking. The emulator therefore runs in its
own thread with its own event loop, and tests talk to it only over HTTP (including to set
object statuses, which is what a real cluster's controllers would do).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import kmock
from kubernetes import client


class KMockCluster:
    def __init__(self, handler: kmock.KubernetesEmulator, url: str):
        self.handler = handler
        self.url = url.rstrip("/")

    def api_client(self) -> client.ApiClient:
        """A fresh client, as a newly started controller process would build."""
        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)

    def stored(self, group: str, version: str, plural: str, namespace: str) -> dict[str, dict[str, Any]]:
        """Objects the emulator holds for a resource (name -> raw object), deleted ones excluded."""
        out = {}
        for (resource, ns, name), obj in list(self.handler.objects.items()):
            if (resource.group, resource.version, resource.plural) == (group, version, plural) \
                    and ns == namespace and not obj.deleted:
                out[name] = obj.raw
        return out


@contextmanager
def kmock_cluster() -> Iterator[KMockCluster]:
    with _serving(kmock.KubernetesEmulator) as (handler, url):
        yield KMockCluster(handler, url)


@contextmanager
def kmock_raw() -> Iterator[tuple[kmock.RawHandler, str]]:
    """A kmock server that answers only what the test scripts (``handler['get /path'] << ...``):
    for failures no real server produces on demand (409 storms, 429s, 410 in mid-watch)."""
    with _serving(kmock.RawHandler) as (handler, url):
        yield handler, url


@contextmanager
def _serving(factory: Any) -> Iterator[tuple[Any, str]]:
    ready = threading.Event()
    state: dict[str, Any] = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        state["loop"] = loop

        async def main() -> None:
            stop = asyncio.Event()
            state["stop"] = stop
            try:
                async with factory() as handler, kmock.Server(handler) as server:
                    state["served"] = handler, str(server.url)
                    ready.set()
                    await stop.wait()
            except BaseException as err:  # surface start-up failures to the test thread
                state["error"] = err
                ready.set()

        loop.run_until_complete(main())
        loop.close()

    thread = threading.Thread(target=serve, name="kmock", daemon=True)
    thread.start()
    ready.wait(30)
    if "served" not in state:
        raise RuntimeError(f"kmock did not start: {state.get('error')!r}")
    try:
        yield state["served"]
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(10)
