"""Informer: a local, always-fresh cache of one kind of resource, with change callbacks.

It lists, then watches from the list's version; on ``Expired`` it lists again and reports
the difference (ADDED / MODIFIED / DELETED) so handlers never miss a change. When the store was
unreachable it lists again once it answers (backing off meanwhile), rather than trusting a
restarted server to replay what happened in between; a stream that ends cleanly is watched again
from the last version. A stream silent for ``idle_seconds`` (the DB manager sends a bookmark
every 10 s) is presumed stuck: it is cancelled and the informer lists again. Every
``resync_seconds`` it replays MODIFIED for every cached object, so a handler that dropped work
gets another chance.

    inf = Informer(store, "Trial", namespace="default")
    inf.add_handler(lambda event_type, trial: queue.add(trial.metadata.name))
    inf.start(); inf.wait_for_sync(10)
    inf.get("default", "t1"); inf.list({"katib.kubeflow.org/experiment": "e1"})

Handlers run on the informer's thread, one at a time, and must not block for long.

``indexed_labels`` names label keys whose values are indexed: ``list`` with one of them among
its labels looks at the matching objects only, not at the whole cache (a controller listing an
experiment's trials on every pass would otherwise scan every trial of every experiment).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sextant.store.interface import EventType, Expired, ResourceStore, StoreError, WatchEvent, WatchStream

log = logging.getLogger("sextant.informer")

Handler = Callable[[EventType, Any], None]


def _key(resource: Any) -> tuple[str, str]:
    return resource.metadata.namespace, resource.metadata.name


def _version(resource: Any) -> int:
    try:
        return int(resource.metadata.resource_version or 0)
    except ValueError:
        return 0


class Informer:
    def __init__(self, store: ResourceStore, kind: str, namespace: str = "",
                 labels: Mapping[str, str] | None = None, resync_seconds: float = 300.0,
                 backoff_max: float = 5.0, idle_seconds: float = 30.0,
                 indexed_labels: tuple[str, ...] = ()):
        self.store = store
        self.kind = kind
        self.namespace = namespace
        self.labels = dict(labels or {})
        self.resync_seconds = resync_seconds
        self.backoff_max = backoff_max
        self.idle_seconds = idle_seconds
        self._last_message = 0.0  # monotonic time of the open stream's last message (or opening)
        self._stalled = False  # the watchdog cancelled a silent stream
        self._handlers: list[Handler] = []
        self._cache: dict[tuple[str, str], Any] = {}
        # label key -> label value -> cache keys of the objects carrying it
        self._index: dict[str, dict[str, set[tuple[str, str]]]] = {label: {} for label in indexed_labels}
        self._lock = threading.RLock()  # guards the cache and serialises handler calls
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._stream: WatchStream | None = None
        self._threads: list[threading.Thread] = []
        self.version = 0  # last store version this cache reflects
        self.relists = 0  # how many times it had to list (1 = only the first time)
        # A list of a store never written returns version 0, and a watch from 0 starts when the
        # store opens it ("now"), which may be after another writer's first change: then the
        # list is taken again once the watch has sent something (the store's first bookmark).
        self._list_again_once_watching = False

    # -- public API ----------------------------------------------------------------------------

    def add_handler(self, handler: Handler) -> None:
        """``handler(event_type, resource)``; added before start() it sees the initial ADDEDs."""
        with self._lock:
            self._handlers.append(handler)
            existing = list(self._cache.values()) if self._synced.is_set() else []
        for resource in existing:
            self._call(handler, EventType.ADDED, resource)

    def start(self) -> Informer:
        if self._threads:
            return self
        run = threading.Thread(target=self._run, name=f"informer-{self.kind}", daemon=True)
        self._threads.append(run)
        if self.idle_seconds and self.idle_seconds > 0:
            self._threads.append(threading.Thread(target=self._watchdog, name=f"watchdog-{self.kind}",
                                                  daemon=True))
        if self.resync_seconds and self.resync_seconds > 0:
            self._threads.append(threading.Thread(target=self._resync_loop, name=f"resync-{self.kind}",
                                                  daemon=True))
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.cancel()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout)

    def has_synced(self) -> bool:
        return self._synced.is_set()

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    def get(self, namespace: str, name: str) -> Any | None:
        with self._lock:
            return self._cache.get((namespace, name))

    def list(self, labels: Mapping[str, str] | None = None) -> list[Any]:
        with self._lock:
            indexed = next((label for label in (labels or {}) if label in self._index), None)
            if indexed is None:
                items = list(self._cache.values())
            else:
                keys = self._index[indexed].get((labels or {})[indexed], set())
                items = [self._cache[key] for key in keys]
        if labels:
            items = [r for r in items if all(r.metadata.labels.get(k) == v for k, v in labels.items())]
        return items

    # -- machinery -----------------------------------------------------------------------------

    def _run(self) -> None:
        delay = 0.1
        need_list = True
        while not self._stop.is_set():
            try:
                if need_list:
                    self._relist()
                    need_list = False
                self._watch()
                delay = 0.1  # the stream ended cleanly (server restart): watch again at once
                if self._stalled:
                    self._stalled = False
                    need_list = True
            except Expired:
                log.info("watch expired, listing again", extra={"kind": self.kind, "version": self.version})
                need_list = True
            except StoreError as err:
                if self._stop.is_set():
                    break
                log.warning("store unavailable, retrying", extra={"kind": self.kind, "error": str(err),
                                                                  "delay": round(delay, 2)})
                self._stop.wait(delay)
                delay = min(self.backoff_max, delay * 2)
                need_list = True
            except Exception:  # noqa: BLE001 - keep the informer alive whatever happens
                log.exception("informer error", extra={"kind": self.kind})
                self._stop.wait(delay)
                delay = min(self.backoff_max, delay * 2)
                need_list = True

    def _relist(self, again: bool = False) -> None:
        """Lists and reports the difference to the cache; ``again`` is the check after a list at
        version 0 (not counted in ``relists``)."""
        items, version = self.store.list(self.kind, self.namespace, self.labels or None)
        fresh = {_key(r): r for r in items}
        with self._lock:
            old = self._cache
            self._cache = fresh
            for label, values in self._index.items():
                values.clear()
                for key, resource in fresh.items():
                    self._index_add(label, key, resource)
            self.version = max(version, self.version) if again else version
            self.relists += 0 if again else 1
            self._list_again_once_watching = version == 0 and not again
            for key, resource in old.items():
                if key not in fresh:
                    self._dispatch(EventType.DELETED, resource)
            for key, resource in fresh.items():
                before = old.get(key)
                if before is None:
                    self._dispatch(EventType.ADDED, resource)
                elif _version(before) != _version(resource):
                    self._dispatch(EventType.MODIFIED, resource)
            self._synced.set()

    def _watch(self) -> None:
        self._last_message = time.monotonic()
        stream = self.store.watch(self.kind, self.namespace, self.version, self.labels or None)
        self._stream = stream
        try:
            if self._stop.is_set():
                return
            for event in stream:
                self._last_message = time.monotonic()
                if self._stop.is_set():
                    return
                self._apply(event)
                if self._list_again_once_watching:
                    self._relist(again=True)
        finally:
            self._stream = None
            stream.cancel()

    def _apply(self, event: WatchEvent) -> None:
        with self._lock:
            self.version = max(self.version, event.resource_version)
            if event.type == EventType.BOOKMARK or event.resource is None:
                return
            key = _key(event.resource)
            cached = self._cache.get(key)
            if event.type == EventType.DELETED:
                if cached is None:
                    return
                del self._cache[key]
                self._unindex(key, cached)
                self._dispatch(EventType.DELETED, event.resource)
                return
            if cached is not None and _version(cached) >= _version(event.resource):
                return  # already seen (the list may include changes the watch replays)
            self._cache[key] = event.resource
            if self._index:
                if cached is not None:
                    self._unindex(key, cached)
                for label in self._index:
                    self._index_add(label, key, event.resource)
            self._dispatch(EventType.ADDED if cached is None else EventType.MODIFIED, event.resource)

    def _index_add(self, label: str, key: tuple[str, str], resource: Any) -> None:
        value = resource.metadata.labels.get(label)
        if value is not None:
            self._index[label].setdefault(value, set()).add(key)

    def _unindex(self, key: tuple[str, str], resource: Any) -> None:
        for label, values in self._index.items():
            value = resource.metadata.labels.get(label)
            keys = values.get(value) if value is not None else None
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del values[value]

    def _watchdog(self) -> None:
        """Cancels a watch that has sent nothing (not even a bookmark) for ``idle_seconds``."""
        assert self.idle_seconds
        while not self._stop.wait(min(1.0, self.idle_seconds / 4)):
            stream = self._stream
            if stream is None:
                continue
            silent = time.monotonic() - self._last_message
            if silent > self.idle_seconds and stream is self._stream:
                log.warning("watch silent, listing again", extra={"kind": self.kind, "silent_s": round(silent, 1)})
                self._stalled = True
                stream.cancel()

    def _resync_loop(self) -> None:
        while not self._stop.wait(self.resync_seconds):
            if not self._synced.is_set():
                continue
            with self._lock:
                for resource in list(self._cache.values()):
                    self._dispatch(EventType.MODIFIED, resource)

    def _dispatch(self, event_type: EventType, resource: Any) -> None:
        for handler in list(self._handlers):
            self._call(handler, event_type, resource)

    def _call(self, handler: Handler, event_type: EventType, resource: Any) -> None:
        try:
            handler(event_type, resource)
        except Exception:  # noqa: BLE001 - one bad handler must not stop the others
            log.exception("informer handler failed", extra={"kind": self.kind, "event": str(event_type)})
