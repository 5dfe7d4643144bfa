"""``MemoryResourceStore``: the ResourceStore in one process's memory, for controllers' unit tests
and the SDK's embedded use.

It keeps the SQL store's semantics (the conformance kit in ``sextant.store.conformance`` holds
both to them): the same defaulting and validation on write (``sextant.store.rules``), one
store-wide version counter advanced by one per change, "nothing changed" writes that keep their
version, cascading delete through ownerReferences, and a bounded change history: a watch from a
version older than the last ``history`` changes is Expired. Every resource is kept as its
canonical JSON text, so callers always get private copies.

Thread-safe: one lock guards the state; watchers wait on a condition of that lock.
"""

from __future__ import annotations

import builtins
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sextant.resources.models import to_doc
from sextant.store import rules
from sextant.store.codec import dumps_canonical, model_from_doc, parse_version
from sextant.store.interface import (
    AlreadyExists,
    Conflict,
    EventType,
    Expired,
    NotFound,
    Resource,
    ResourceStore,
    WatchEvent,
    WatchStream,
)

Key = tuple[str, str, str]  # kind, namespace, name


@dataclass(frozen=True)
class _Change:
    version: int
    type: EventType
    kind: str
    namespace: str
    labels: Mapping[str, str]
    text: str  # the document as it was at this version (for DELETED: as it was deleted)


class MemoryResourceStore(ResourceStore):
    def __init__(self, history: int = 10_000, bookmark_seconds: float = 10.0):
        self.history = max(1, history)
        self.bookmark_seconds = bookmark_seconds
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._items: dict[Key, str] = {}  # the current version of every resource, as JSON text
        self._version = 0
        self._log: deque[_Change] = deque()  # the newest ``history`` changes, oldest first

    # -- reads ---------------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> Resource:
        key = (kind, namespace or "default", name)
        with self._lock:
            text = self._items.get(key)
        if text is None:
            raise NotFound(f"{kind} {key[1]}/{name} not found")
        return model_from_doc(json.loads(text))

    def list(self, kind: str, namespace: str = "",
             labels: Mapping[str, str] | None = None) -> tuple[builtins.list[Resource], int]:
        rules.check_scope(kind, namespace)
        with self._lock:
            version = self._version
            texts = [(key, text) for key, text in self._items.items()
                     if (not kind or key[0] == kind) and (not namespace or key[1] == namespace)]
        texts.sort(key=lambda kt: (kt[0][1], kt[0][2], kt[0][0]))
        docs = [json.loads(text) for _, text in texts]
        return [model_from_doc(d) for d in docs if rules.selected(d, labels)], version

    # -- writes --------------------------------------------------------------------------------

    def create(self, resource: Resource, *, dry_run: bool = False) -> Resource:
        doc = rules.admit_new(to_doc(resource))
        if dry_run:
            return model_from_doc(doc)
        meta = doc["metadata"]
        key = (doc["kind"], meta["namespace"], meta["name"])
        with self._lock:
            if key in self._items:
                raise AlreadyExists(f"{key[0]} {key[1]}/{key[2]} already exists")
            rules.check_owners_exist(doc, lambda owner: self._holds(key[1], owner))
            meta["uid"] = str(uuid.uuid4())
            text = self._commit([(EventType.ADDED, key, doc)])[0]
        return model_from_doc(json.loads(text))

    def update(self, resource: Resource) -> Resource:
        return self._modify(to_doc(resource), status_only=False)

    def update_status(self, resource: Resource) -> Resource:
        return self._modify(to_doc(resource), status_only=True)

    def _modify(self, doc: dict[str, Any], *, status_only: bool) -> Resource:
        key = rules.identity(doc)
        expected = parse_version(rules.meta(doc).get("resourceVersion"))
        rules.check_halves(doc)
        with self._lock:
            # Validation runs under the lock: it needs the current document, and an Experiment's
            # update is checked against it. Unit-test sized stores do not mind the serialisation.
            text = self._current(key, expected)
            old = json.loads(text)
            if status_only:
                status = rules.status_updated(old, doc)
                if status is None:
                    return model_from_doc(old)  # nothing changed: no new version, no event
                new = {**old, "status": status}
            else:
                change = rules.updated(old, doc)
                if change is None:
                    return model_from_doc(old)
                meta, spec = change
                new = {**old, "metadata": meta, "spec": spec if spec is not None else old["spec"]}
            text = self._commit([(EventType.MODIFIED, key, new)])[0]
        return model_from_doc(json.loads(text))

    def delete(self, kind: str, namespace: str, name: str, resource_version: int = 0) -> builtins.list[Resource]:
        key = rules.key_of(kind, namespace, name)
        with self._lock:
            root = json.loads(self._current(key, resource_version, action="deleted"))
            in_namespace = {k: json.loads(t) for k, t in self._items.items() if k[1] == key[1]}
            by_uid = {d["metadata"]["uid"]: (k, d) for k, d in in_namespace.items()}
            children: dict[str, builtins.list[str]] = {}
            for d in in_namespace.values():
                for owner in d["metadata"]["ownerReferences"]:
                    children.setdefault(owner.get("uid", ""), []).append(d["metadata"]["uid"])
            doomed = [by_uid[uid] for uid in rules.dependents(root["metadata"]["uid"], children)]
            texts = self._commit([(EventType.DELETED, k, d) for k, d in doomed])
        return [model_from_doc(json.loads(t)) for t in texts]

    def _holds(self, namespace: str, owner: Mapping[str, Any]) -> bool:
        """Whether the owner reference's resource is stored, with its uid (the lock held)."""
        text = self._items.get((str(owner.get("kind")), namespace, str(owner.get("name"))))
        return text is not None and json.loads(text)["metadata"].get("uid") == owner.get("uid")

    def _current(self, key: Key, expected: int, action: str = "modified") -> str:
        """The stored text of ``key``, checked against the version the writer expects (0: any).
        Called with the lock held."""
        text = self._items.get(key)
        if text is None:
            raise NotFound(f"{key[0]} {key[1]}/{key[2]} not found")
        if expected:
            current = int(json.loads(text)["metadata"]["resourceVersion"])
            if current != expected:
                raise Conflict(f"{key[0]} {key[1]}/{key[2]} was {action}: resourceVersion is {current}, "
                               f"not {expected}; re-read and retry")
        return text

    def _commit(self, changes: builtins.list[tuple[EventType, Key, dict[str, Any]]]) -> builtins.list[str]:
        """Gives each change the next version, applies it, records it and wakes the watchers.
        Called with the lock held; returns each document's new text."""
        texts = []
        for change_type, key, doc in changes:
            self._version += 1
            doc["metadata"]["resourceVersion"] = str(self._version)
            text = dumps_canonical(doc)
            if change_type == EventType.DELETED:
                del self._items[key]
            else:
                self._items[key] = text
            self._log.append(_Change(self._version, change_type, key[0], key[1],
                                     dict(doc["metadata"]["labels"]), text))
            texts.append(text)
        while len(self._log) > self.history:
            self._log.popleft()
        self._changed.notify_all()
        return texts

    # -- watch ---------------------------------------------------------------------------------

    def watch(self, kind: str = "", namespace: str = "", since: int = 0,
              labels: Mapping[str, str] | None = None) -> WatchStream:
        return _MemoryWatch(self, kind, namespace, dict(labels or {}), since)


class _MemoryWatch(WatchStream):
    """Opened by the first ``next()`` (which raises Invalid or Expired), as the gRPC client's
    watch is: "now" for a watch from 0 is that moment."""

    def __init__(self, store: MemoryResourceStore, kind: str, namespace: str, labels: dict[str, str],
                 since: int):
        self._store = store
        self._kind, self._namespace, self._labels = kind, namespace, labels
        self._since = since
        self._last = -1  # every change up to this version has been looked at; -1: not opened yet
        self._cancelled = False
        self._next_bookmark = time.monotonic() + store.bookmark_seconds

    def _open(self) -> None:
        """Checks the request against the history; called with the lock held."""
        rules.check_scope(self._kind, self._namespace)
        rules.check_since(self._since)
        store, since = self._store, self._since
        compacted = store._log[0].version - 1 if store._log else store._version
        if since and (since < compacted or since > store._version):
            raise Expired(f"resourceVersion {since} is outside the retained history "
                          f"({compacted + 1}..{store._version}); list again and watch from its version")
        self._last = since or store._version
        self._next_bookmark = time.monotonic()  # the first bookmark once caught up, as the SQL store

    def __next__(self) -> WatchEvent:
        change = self._next_change()
        if change.type == EventType.BOOKMARK:
            return WatchEvent(EventType.BOOKMARK, None, change.version)
        return WatchEvent(change.type, model_from_doc(json.loads(change.text)), change.version)

    def _next_change(self) -> _Change:
        """The next wanted change, or a bookmark (a ``_Change`` without a document) when one is due."""
        store = self._store
        with store._lock:
            while True:
                if self._cancelled:
                    raise StopIteration
                if self._last < 0:
                    self._open()
                log = store._log
                if log and self._last < log[0].version - 1:
                    raise Expired(f"watch fell behind the retained history at {self._last}; list again")
                # Versions are dense, so the next change is found by position.
                while log and self._last < store._version:
                    change = log[self._last + 1 - log[0].version]
                    self._last = change.version
                    if self._wanted(change):
                        return change
                now = time.monotonic()
                if now >= self._next_bookmark:
                    self._next_bookmark = now + store.bookmark_seconds
                    return _Change(self._last, EventType.BOOKMARK, "", "", {}, "")
                store._changed.wait(self._next_bookmark - now)

    def _wanted(self, change: _Change) -> bool:
        return ((not self._kind or change.kind == self._kind)
                and (not self._namespace or change.namespace == self._namespace)
                and all(change.labels.get(k) == v for k, v in self._labels.items()))

    def cancel(self) -> None:
        with self._store._lock:
            self._cancelled = True
            self._store._changed.notify_all()
