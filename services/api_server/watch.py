"""Watches: one stream from the resource store fanned out to every HTTP watcher.

The hub keeps one store watch (all kinds, all namespaces) in a thread and a window of recent
events; a client watching from a resourceVersion inside the window is served from it, so 50
watchers cost the DB manager one stream. A client asking for a version older than the window
(e.g. after this server restarted) gets a store watch of its own from that version; one older
than the store's history gets 410 Expired. Store bookmarks pass through as version markers,
so a watcher that asked for bookmarks learns how far it has seen even when nothing changes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Gauge, Histogram

from sextant.resources.models import to_doc
from sextant.store.interface import Expired, StoreError

log = logging.getLogger("sextant.api_server.watch")

WATCHERS = Gauge("sextant_api_watchers", "Open HTTP watch streams")
FANOUT_DELAY = Histogram("sextant_api_watch_fanout_seconds",
                         "Delay from the store's event reaching this server to a watcher's queue",
                         buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))
WINDOW = 20_000
RETRY_SECONDS = 0.5
TOO_LARGE_WAIT = 3.0  # seconds a watch from a version not seen yet waits for it


@dataclass(frozen=True)
class Change:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
    version: int
    doc: dict[str, Any] | None  # None for BOOKMARK
    received: float = 0.0
    error: str = ""  # for ERROR: the reason of the end (an Expired message)
    # Encoded watch lines by shape (version, table or not): one encoding serves every watcher.
    encoded: dict[Any, bytes] = field(default_factory=dict, compare=False, repr=False)


class Subscription:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.queue: asyncio.Queue[Change] = asyncio.Queue()
        self.loop = loop

    def put_threadsafe(self, change: Change) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, change)


class WatchHub:
    def __init__(self, store: Any, loop: asyncio.AbstractEventLoop):
        self.store = store
        self.loop = loop
        self.window: collections.deque[Change] = collections.deque(maxlen=WINDOW)
        self.start_version = 0  # the window holds every change after this version…
        self.started = False  # …once the hub has listed (an empty store is at version 0)
        self.version = 0  # the newest version this hub knows of
        self.subscribers: set[Subscription] = set()
        self.direct: set[Subscription] = set()
        self._stream: Any = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-watch-hub", daemon=True)

    # -- upstream (a thread) ----------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.cancel()

    def _run(self) -> None:
        since = 0
        while not self._stop.is_set():
            try:
                if not since:
                    _, since = self.store.list("Experiment")
                    self.loop.call_soon_threadsafe(self._reset, since)
                self._stream = self.store.watch(since=since)
                self._ready.set()
                for event in self._stream:
                    if self._stop.is_set():
                        return
                    doc = to_doc(event.resource) if event.resource is not None else None
                    change = Change(str(event.type), event.resource_version, doc, time.monotonic())
                    since = max(since, event.resource_version)
                    self.loop.call_soon_threadsafe(self._dispatch, change)
            except Expired as err:
                log.warning("the store's history moved past this server's watch; watchers must relist",
                            extra={"error": str(err)})
                self.loop.call_soon_threadsafe(self._expire_all, str(err))
                since = 0
            except StoreError as err:
                if self._stop.is_set():
                    return
                log.info("store watch interrupted; resuming", extra={"error": str(err), "since": since})
            except Exception:  # noqa: BLE001 - the hub must outlive any single failure
                log.exception("store watch failed; resuming")
            self._stop.wait(RETRY_SECONDS)

    # -- the event loop side ---------------------------------------------------------------
    def _reset(self, version: int) -> None:
        self.window.clear()
        self.start_version = version
        self.started = True
        self.version = max(self.version, version)

    def _dispatch(self, change: Change) -> None:
        if change.version < self.version and change.type != "BOOKMARK":
            return  # a repeat after the upstream resumed
        self.version = max(self.version, change.version)
        if change.type != "BOOKMARK":
            self.window.append(change)
            if len(self.window) == self.window.maxlen:
                self.start_version = self.window[0].version - 1
        for sub in self.subscribers:
            sub.queue.put_nowait(change)
        if change.received:
            FANOUT_DELAY.observe(time.monotonic() - change.received)

    def _expire_all(self, message: str) -> None:
        for sub in self.subscribers:
            sub.queue.put_nowait(Change("ERROR", 0, None, error=message))
        self.started = False  # until the next list: new watchers go to the store

    # -- watchers --------------------------------------------------------------------------
    def end_all(self) -> None:
        """Ends every open watch cleanly (server shutdown): clients re-watch from their last
        version, here or at the next server."""
        for sub in self.subscribers | self.direct:
            sub.queue.put_nowait(Change("END", 0, None))

    async def follow(self, since: int, timeout: float | None = None) -> AsyncIterator[tuple[Change, bool]]:
        """Every change after ``since``, in order, until the caller stops iterating, the
        timeout passes or the server stops, each with whether more are already waiting (so the
        caller can write them together). Raises Expired if ``since`` is older than what the
        store keeps."""
        sub = Subscription(self.loop)
        deadline = time.monotonic() + timeout if timeout else None
        WATCHERS.inc()
        try:
            if self.started and since > self.version:
                await self._wait_for_version(since)
            if self.started and since >= self.start_version:
                self.subscribers.add(sub)
                replay = [c for c in self.window if c.version > since]
                for i, old in enumerate(replay):
                    yield old, i + 1 < len(replay) or not sub.queue.empty()
                last = max(since, self.window[-1].version if self.window else since)
                while (change := await _next(sub, deadline)) is not None:
                    if change.version <= last and change.type != "BOOKMARK":
                        continue
                    last = max(last, change.version)
                    yield change, not sub.queue.empty()
            else:
                self.direct.add(sub)
                async for change in self._direct(sub, since, deadline):
                    yield change, not sub.queue.empty()
        finally:
            self.subscribers.discard(sub)
            self.direct.discard(sub)
            WATCHERS.dec()

    async def _wait_for_version(self, since: int) -> None:
        """A watch from a version this server has not seen: it may be a write that is on its way
        here, so wait a moment, as a Kubernetes API server does; a version still unknown then
        is refused (the client lists again)."""
        deadline = time.monotonic() + TOO_LARGE_WAIT
        while since > self.version and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if since > self.version:
            raise Expired(f"too large resource version: {since}, current: {self.version}")

    async def _direct(self, sub: Subscription, since: int, deadline: float | None) -> AsyncIterator[Change]:
        """A store watch of this watcher's own, for a version the window no longer holds."""
        stream = self.store.watch(since=since)  # no call is made until it is iterated

        def pump() -> None:
            try:
                for event in stream:
                    doc = to_doc(event.resource) if event.resource is not None else None
                    sub.put_threadsafe(Change(str(event.type), event.resource_version, doc, time.monotonic()))
            except Expired as err:
                sub.put_threadsafe(Change("ERROR", 0, None, error=str(err)))
            except StoreError as err:
                sub.put_threadsafe(Change("END", 0, None, error=str(err)))
            else:
                sub.put_threadsafe(Change("END", 0, None))

        threading.Thread(target=pump, name="api-watch-direct", daemon=True).start()
        try:
            while (change := await _next(sub, deadline)) is not None:
                yield change
        finally:
            stream.cancel()


async def _next(sub: Subscription, deadline: float | None) -> Change | None:
    """The subscription's next change; None at the deadline or the end. Raises Expired."""
    try:
        if deadline is None:
            change = await sub.queue.get()
        else:
            change = await asyncio.wait_for(sub.queue.get(), max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        return None
    if change.type == "ERROR":
        raise Expired(change.error)
    return None if change.type == "END" else change
