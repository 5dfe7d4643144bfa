"""Watches: one stream from the resource store fanned out to every HTTP watcher.

The hub keeps one store watch (all kinds, all namespaces) in a thread and a window of recent
events while anyone watches: the first watcher starts it from its own version, and it stops a
while after the last one leaves (decoding every store event for no reader cost the local stack
several milliseconds of CPU per trial). A client watching from a resourceVersion inside the
window is served from it, so 50 watchers cost the DB manager one stream. A client asking for a
version older than the window (e.g. after this server restarted) gets a store watch of its own
from that version; one older than the store's history gets 410 Expired. Store bookmarks pass
through as version markers, so a watcher that asked for bookmarks learns how far it has seen
even when nothing changes.
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
from sextant.store.interface import Expired, ResourceStore, StoreError, WatchStream

log = logging.getLogger("sextant.api_server.watch")

WATCHERS = Gauge("sextant_api_watchers", "Open HTTP watch streams")
FANOUT_DELAY = Histogram("sextant_api_watch_fanout_seconds",
                         "Delay from the store's event reaching this server to a watcher's queue",
                         buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))
WINDOW = 20_000
RETRY_SECONDS = 0.5
TOO_LARGE_WAIT = 3.0  # seconds a watch from a version not seen yet waits for it
IDLE_SECONDS = 30.0  # the store watch outlives its last watcher this long (clients re-watch often)
START_WAIT = 10.0  # seconds a watcher waits for the store watch to start before it goes direct


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
    def __init__(self, store: ResourceStore, loop: asyncio.AbstractEventLoop):
        self.store = store
        self.loop = loop
        self.window: collections.deque[Change] = collections.deque(maxlen=WINDOW)
        self.start_version = 0  # the window holds every change after this version…
        self.started = False  # …once the hub has listed (an empty store is at version 0)
        self.version = 0  # the newest version this hub knows of
        # The newest version the store watch has passed on: a resumed stream repeats older ones,
        # which are dropped; a stream started from a watcher's older version replays the changes
        # between it and ``version``, which are not.
        self.streamed = 0
        # The newest version this server has handed out (a write's or a read's result): a watch
        # that starts after it is decided on a window that has caught up with it.
        self.handed = 0
        self.subscribers: set[Subscription] = set()
        self.direct: set[Subscription] = set()
        self._stream: WatchStream | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()  # the store answered once
        self._wanted = threading.Event()  # someone watches (or did, IDLE_SECONDS ago)
        self._request = (0, 0)  # (generation, version): where the next start streams from
        self._starting: asyncio.Future[None] | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._thread = threading.Thread(target=self._run, name="api-watch-hub", daemon=True)

    # -- upstream (a thread) ----------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._wanted.set()  # wakes the thread, which then sees the stop
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.cancel()

    def _current_version(self) -> int:
        return int(self.store.list("Experiment")[1])

    def _run(self) -> None:
        while not self._ready.is_set() and not self._stop.is_set():
            try:
                version = self._current_version()
                self.loop.call_soon_threadsafe(self._learn, version)
                self._ready.set()
            except Exception as err:  # noqa: BLE001 - not ready until the store answers
                log.info("store not reachable yet", extra={"error": str(err)})
                self._stop.wait(RETRY_SECONDS)
        used, since, expired = 0, 0, False
        while not self._stop.is_set():
            if not self._wanted.wait(1.0) or self._stop.is_set():
                continue
            generation, start = self._request
            if generation != used:  # a new start, from the first watcher's version
                used, since, expired = generation, start, False
                self.loop.call_soon_threadsafe(self._reset, since, generation)
            elif expired:  # the loop has not taken the expiry in yet: wait for a new start
                self._stop.wait(0.05)
                continue
            try:
                self._stream = self.store.watch(since=since)
                for event in self._stream:
                    if self._stop.is_set():
                        return
                    if not self._wanted.is_set():
                        break  # nobody watches any more
                    doc = to_doc(event.resource) if event.resource is not None else None
                    change = Change(str(event.type), event.resource_version, doc, time.monotonic())
                    since = max(since, event.resource_version)
                    self.loop.call_soon_threadsafe(self._dispatch, change)
            except Expired as err:
                log.warning("the store's history moved past this server's watch; watchers must relist",
                            extra={"error": str(err)})
                self.loop.call_soon_threadsafe(self._expire_all, str(err))
                expired = True
                continue
            except StoreError as err:
                if self._stop.is_set():
                    return
                log.info("store watch interrupted; resuming", extra={"error": str(err), "since": since})
            except Exception:  # noqa: BLE001 - the hub must outlive any single failure
                log.exception("store watch failed; resuming")
            finally:
                stream, self._stream = self._stream, None
                if stream is not None:
                    with contextlib.suppress(Exception):
                        stream.cancel()
            if self._wanted.is_set():
                self._stop.wait(RETRY_SECONDS)

    # -- the event loop side ---------------------------------------------------------------
    def _learn(self, version: int) -> None:
        self.version = max(self.version, version)

    def _reset(self, version: int, generation: int) -> None:
        if generation != self._request[0] or not self._wanted.is_set():
            return  # a start nobody waits for any more
        self.window.clear()
        self.start_version = version
        self.started = True
        self.streamed = version
        self.version = max(self.version, version)
        if self._starting is not None and not self._starting.done():
            self._starting.set_result(None)

    def _idle(self) -> None:
        """No watcher for IDLE_SECONDS: the store watch ends until the next one comes."""
        self._idle_timer = None
        if self.subscribers:
            return
        self._wanted.clear()
        self.started = False
        self.window.clear()
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.cancel()

    async def _start_streaming(self, since: int) -> None:
        """Starts the store watch from ``since`` (or from the newest version, for a version the
        store has not reached: the caller then waits for it) and waits until it runs."""
        if not self._wanted.is_set() or self._starting is None or self._starting.done():
            if since > self.version:
                self._learn(await self.loop.run_in_executor(None, self._current_version))
            self._starting = self.loop.create_future()
            self._request = (self._request[0] + 1, min(since, self.version))
            self._wanted.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._starting), START_WAIT)

    def _dispatch(self, change: Change) -> None:
        if not self.started:
            return  # the rest of a stream that was stopped
        if change.version < self.streamed and change.type != "BOOKMARK":
            return  # a repeat after the upstream resumed
        self.streamed = max(self.streamed, change.version)
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
        self.started = False  # until the next start
        self._wanted.clear()
        if self._starting is not None and not self._starting.done():
            self._starting.set_result(None)  # the watcher finds the hub stopped and goes direct

    # -- watchers --------------------------------------------------------------------------
    def handed_out(self, version: int) -> None:
        self.handed = max(self.handed, version)

    async def _catch_up(self) -> None:
        """Waits (a moment at most) until the store watch has passed every version this server
        handed out. Without it, a client that wrote and then watched from an older version
        could be served from a window that has not yet taken in its writes (and so still holds
        that older version), or get 410 Expired, depending on how far the store watch lagged."""
        deadline = time.monotonic() + TOO_LARGE_WAIT
        while self.started and self.streamed < self.handed and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

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
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            if not self.started:
                await self._start_streaming(since)
            if self.started and since > self.version:
                await self._wait_for_version(since)
            await self._catch_up()
            if self.started and since >= self.start_version:
                self.subscribers.add(sub)
                replay = [c for c in self.window if c.version > since]
                # What the queue repeats is what the replay sent: the window may grow while the
                # replay is written, and those changes come only through the queue.
                last = max(since, replay[-1].version if replay else since)
                for i, old in enumerate(replay):
                    yield old, i + 1 < len(replay) or not sub.queue.empty()
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
            if not self.subscribers and self._wanted.is_set() and self._idle_timer is None:
                self._idle_timer = self.loop.call_later(IDLE_SECONDS, self._idle)

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
