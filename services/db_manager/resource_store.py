"""The resource store on SQL: documents with Kubernetes-style metadata, a store-wide
resourceVersion, optimistic concurrency, cascading delete and a change log for watches.

Documents are dicts in Katib's JSON shape (see ``sextant.store.codec``). Every write runs in
one transaction that first locks the ``store_state`` row and takes the next version(s) from it,
so versions are dense, commits happen in version order, and a stale write is detected under
the lock (nothing overwritten).

Cost per call: every resource this process read or wrote is kept decoded in an LRU cache
(``Stored``: the document, its spec/status JSON text as stored, and its wire form built once).
Several DB managers may share one database, so a cached resource is never trusted blindly:
each read and each write first selects the row's ``resource_version`` (a small indexed query)
and uses the cached copy only if it is that version. Versions are store-wide and never reused,
so the same version means the same content. Writes validate only what changed (see
``sextant/store/normalize.py``), encode the new status once and reuse that text for the column,
the change log, the reply and every watcher.

Two APIs: the ``ResourceStore`` interface on models (what the in-process SDK and the store
conformance kit use), and the same operations on documents and ``Stored`` versions (``*_doc``,
``*_stored``), which the gRPC service uses to send stored text without decoding it. ``follow``
is the one watch loop behind both the interface's ``watch`` and the gRPC Watch.
"""

from __future__ import annotations

import builtins
import copy
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from services.db_manager.database import Database
from services.db_manager.group_commit import GroupCommit
from services.db_manager.notifier import ChangeNotifier
from services.db_manager.observations import delete_logs
from services.db_manager.schema import resource_events as E
from services.db_manager.schema import resources as R
from services.db_manager.schema import store_state as S
from sextant.api import store_pb2
from sextant.resources.models import to_doc
from sextant.store import rules
from sextant.store.codec import dumps_canonical, model_from_doc, parse_version, proto_from_doc
from sextant.store.interface import (
    AlreadyExists,
    Conflict,
    EventType,
    Expired,
    Invalid,
    NotFound,
    Resource,
    ResourceStore,
    WatchEvent,
    WatchStream,
)

DEFAULT_HISTORY = 10_000  # change-log entries kept for watches that resume
RECENT = 4096  # change-log entries this process wrote, kept in memory for its watchers
RECENT_CHARS = 64 * 1024 * 1024  # ... holding at most this much snapshot text (large Suggestions)
# Of those, the newest keep their decoded document and wire form, so each change is encoded
# once for all watchers; older ones (a watcher that fell far behind) are decoded from the
# snapshot text. Bounded because a large Suggestion's document is big.
RECENT_DECODED = 256
PRUNE_EVERY = 64
WATCH_BATCH = 1000  # change-log entries read per query by a watch that is behind
CACHE_SIZE = 2048  # resources kept decoded (LRU)

_dumps = dumps_canonical

# Statements built once: building and cache-keying a SQLAlchemy statement on every call costs
# more than running it.
_KEY = (R.c.kind == sa.bindparam("kind"), R.c.namespace == sa.bindparam("namespace"),
        R.c.name == sa.bindparam("name"))
_VERSION_BY_KEY = sa.select(R.c.id, R.c.resource_version).where(*_KEY)
_VERSION_BY_KEY_LOCKED = _VERSION_BY_KEY.with_for_update()
_ROW_BY_KEY = sa.select(R).where(*_KEY)
_ROW_BY_ID = sa.select(R).where(R.c.id == sa.bindparam("row_id"))
_UPDATE_ROW = R.update().where(R.c.id == sa.bindparam("row_id"))
_OWNERSHIP_IN_NAMESPACE = sa.select(R.c.id, R.c.kind, R.c.name, R.c.uid, R.c.resource_version,
                                    R.c.owner_references).where(R.c.namespace == sa.bindparam("namespace"))
_UPDATE_ROW_IF_AT = R.update().where(R.c.id == sa.bindparam("row_id"),
                                     R.c.resource_version == sa.bindparam("cached_version"))
_INSERT_ROW = R.insert()
_UID_IN_NAMESPACE = sa.select(R.c.id).where(R.c.namespace == sa.bindparam("namespace"), R.c.uid == sa.bindparam("uid"))
_INSERT_EVENTS = E.insert()
_LOCK = sa.select(S.c.resource_version).where(S.c.id == 1).with_for_update()
_VERSION = sa.select(S.c.resource_version).where(S.c.id == 1)
_STATE = sa.select(S.c.resource_version, S.c.compacted_version).where(S.c.id == 1)
_SET_VERSION = S.update().where(S.c.id == 1)


@dataclass(frozen=True)
class Change:
    resource_version: int
    type: str  # ADDED | MODIFIED | DELETED
    doc: dict[str, Any]


class Stored:
    """One resource at one version, shared by every thread and never mutated.

    ``head`` is apiVersion, kind and metadata; spec and status are kept as the JSON text of
    their columns (which is also their wire form) and decoded only when a write needs them.
    """

    __slots__ = ("id", "head", "spec_json", "status_json", "version", "_doc", "_resource")

    def __init__(self, row_id: int, head: dict[str, Any], spec_json: str, status_json: str,
                 doc: dict[str, Any] | None = None):
        self.id = row_id
        self.head = head
        self.spec_json = spec_json
        self.status_json = status_json
        self.version = int(head["metadata"]["resourceVersion"])
        self._doc = doc
        self._resource: store_pb2.Resource | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        meta = self.head["metadata"]
        return self.head["kind"], meta["namespace"], meta["name"]

    @property
    def doc(self) -> dict[str, Any]:
        """The decoded document (shared: do not modify it)."""
        if self._doc is None:
            self._doc = {**self.head, "spec": json.loads(self.spec_json), "status": json.loads(self.status_json)}
        return self._doc

    def fresh(self) -> dict[str, Any]:
        """A private copy of the document, for callers that may modify it."""
        return {"apiVersion": self.head["apiVersion"], "kind": self.head["kind"],
                "metadata": copy.deepcopy(self.head["metadata"]),
                "spec": json.loads(self.spec_json), "status": json.loads(self.status_json)}

    def resource(self) -> store_pb2.Resource:
        """The wire form, built once (gRPC only serializes it, so it can be shared)."""
        if self._resource is None:
            self._resource = proto_from_doc(self.head, spec_json=self.spec_json, status_json=self.status_json)
        return self._resource

    def snapshot(self) -> str:
        """``_dumps(doc)``, assembled around the spec and status text instead of re-encoding them."""
        h = self.head
        return (f'{{"apiVersion":{_dumps(h["apiVersion"])},"kind":{_dumps(h["kind"])},'
                f'"metadata":{_dumps(h["metadata"])},"spec":{self.spec_json},"status":{self.status_json}}}')


class Recorded:
    """A change this process committed, as its watchers read it from memory."""

    __slots__ = ("resource_version", "type", "kind", "namespace", "snapshot", "stored", "event")

    def __init__(self, change_type: str, stored: Stored, snapshot: str):
        self.resource_version = stored.version
        self.type = change_type
        self.kind, self.namespace, _ = stored.key
        self.snapshot = snapshot
        self.stored: Stored | None = stored  # dropped once the change is RECENT_DECODED old
        self.event: store_pb2.WatchEvent | None = None  # the watch event, built by the first watcher that sends it


def _head(row: Any, version: int | None = None) -> dict[str, Any]:
    return {
        "apiVersion": row.api_version,
        "kind": row.kind,
        "metadata": {
            "name": row.name,
            "namespace": row.namespace,
            "uid": row.uid,
            "resourceVersion": str(version if version is not None else row.resource_version),
            "generation": row.generation,
            "labels": json.loads(row.labels),
            "annotations": json.loads(row.annotations),
            "ownerReferences": json.loads(row.owner_references),
            "creationTimestamp": row.creation_timestamp,
        },
    }


def _from_row(row: Any, version: int | None = None) -> Stored:
    return Stored(row.id, _head(row, version), row.spec, row.status)


def _with_status(stored: Stored, status: dict[str, Any], version: int, status_json: str | None = None) -> Stored:
    """``stored`` with a new (normalized) status at ``version``."""
    head = {**stored.head, "metadata": {**stored.head["metadata"], "resourceVersion": str(version)}}
    return Stored(stored.id, head, stored.spec_json, status_json if status_json is not None else _dumps(status),
                  doc={**head, "spec": stored.doc["spec"], "status": status})


class _Cache:
    """Decoded resources by (kind, namespace, name), least recently used dropped first."""

    def __init__(self, size: int):
        self.size = size
        self._entries: OrderedDict[tuple[str, str, str], Stored] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> Stored | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, stored: Stored) -> None:
        if self.size <= 0:
            return
        key = stored.key
        with self._lock:
            old = self._entries.get(key)
            if old is not None and old.version > stored.version:
                return  # a reader that raced a writer: keep the newer one
            self._entries[key] = stored
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def drop(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            self._entries.pop(key, None)


class SqlResourceStore(ResourceStore):
    def __init__(self, db: Database, notifier: ChangeNotifier | None = None,
                 history: int = DEFAULT_HISTORY, cache_size: int = CACHE_SIZE,
                 poll_seconds: float = 1.0, bookmark_seconds: float = 10.0, prune_every: int = PRUNE_EVERY):
        self.db = db
        # For the interface's watch (the gRPC service passes its own): how often a watch looks
        # for changes written by another process, and how often it sends a bookmark.
        self.poll_seconds = poll_seconds
        self.bookmark_seconds = bookmark_seconds
        # SQLite: writes waiting at the same moment share one transaction and one commit (its
        # writers are serial anyway). MariaDB/PostgreSQL pipeline concurrent commits themselves
        # (the version lock is released before the log flush), which measured faster here than
        # one leader running every statement of a batch: 571 vs 394 writes/s with 8 writers.
        self._commits = GroupCommit(db.write, max_batch=64 if db.backend == "sqlite" else 1)
        self.notifier = notifier or ChangeNotifier()
        self.history = max(1, history)
        self.prune_every = max(1, prune_every)  # the change log is pruned once per this many versions
        self._cache = _Cache(cache_size)
        # The changes this process committed, by version: every open watch reads each change,
        # and serving them from memory saves a query (and a JSON decode of the row) per watch
        # per change. A version missing here (written by another DB manager on the same
        # database, or not yet remembered) sends the reader to the table.
        self._recent: dict[int, Recorded] = {}
        self._recent_chars = 0
        self._recent_lock = threading.Lock()

    # -- the ResourceStore interface (models) --------------------------------------------------

    def create(self, resource: Resource, *, dry_run: bool = False) -> Resource:
        return model_from_doc(self.create_doc(to_doc(resource), dry_run=dry_run))

    def get(self, kind: str, namespace: str, name: str) -> Resource:
        return model_from_doc(self.get_doc(kind, namespace, name))

    def list(self, kind: str, namespace: str = "",
             labels: Mapping[str, str] | None = None) -> tuple[builtins.list[Resource], int]:
        items, version = self.list_docs(kind, namespace, labels)
        return [model_from_doc(d) for d in items], version

    def update(self, resource: Resource) -> Resource:
        return model_from_doc(self.update_doc(to_doc(resource)))

    def update_status(self, resource: Resource) -> Resource:
        return model_from_doc(self.update_status_doc(to_doc(resource)))

    def delete(self, kind: str, namespace: str, name: str,
               resource_version: int = 0) -> builtins.list[Resource]:
        return [model_from_doc(d) for d in self.delete_docs(kind, namespace, name, resource_version)]

    def watch(self, kind: str = "", namespace: str = "", since: int = 0,
              labels: Mapping[str, str] | None = None) -> WatchStream:
        return _SqlWatch(self, kind, namespace, since, labels)

    # -- reads ---------------------------------------------------------------------------------

    def get_doc(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return self.read(kind, namespace, name).fresh()

    def read(self, kind: str, namespace: str, name: str) -> Stored:
        """The stored resource (shared: do not modify its document)."""
        params = {"kind": kind, "namespace": namespace or "default", "name": name}
        key = (kind, params["namespace"], name)
        cached = self._cache.get(key)
        with self.db.read() as conn:
            row = None
            if cached is not None:
                current = conn.execute(_VERSION_BY_KEY, params).first()
                if current is not None and current.resource_version == cached.version:
                    return cached
                if current is not None:  # changed since: read it again
                    row = conn.execute(_ROW_BY_KEY, params).first()
            else:
                row = conn.execute(_ROW_BY_KEY, params).first()
        if row is None:
            self._cache.drop(key)
            raise NotFound(f"{kind} {key[1]}/{name} not found")
        stored = _from_row(row)
        self._cache.put(stored)
        return stored

    def cached(self, kind: str, namespace: str, name: str) -> Stored | None:
        """The cached copy of a resource, if any: possibly stale (nothing is read)."""
        return self._cache.get((kind, namespace, name))

    def list_docs(self, kind: str, namespace: str = "",
                  labels: Mapping[str, str] | None = None) -> tuple[builtins.list[dict[str, Any]], int]:
        items, version = self.list_stored(kind, namespace, labels)
        return [s.fresh() for s in items], version

    def list_stored(self, kind: str, namespace: str = "",
                    labels: Mapping[str, str] | None = None) -> tuple[builtins.list[Stored], int]:
        rules.check_scope(kind, namespace)
        with self.db.read() as conn:
            # The version is read first: a change that lands in between shows up in the list
            # and again in a watch from this version, which consumers treat as idempotent.
            version: int = conn.execute(_VERSION).scalar_one()
            query = sa.select(R)
            if kind:
                query = query.where(R.c.kind == kind)
            if namespace:
                query = query.where(R.c.namespace == namespace)
            rows = conn.execute(query.order_by(R.c.namespace, R.c.name)).all()
        items = [_from_row(r) for r in rows]
        if labels:
            items = [s for s in items if rules.selected(s.head, labels)]
        return items, version

    def recent(self, after: int, upto: int, kind: str = "", namespace: str = "") -> builtins.list[Recorded] | None:
        """Changes (after, upto] from memory, or None if any of them is not there."""
        if upto - after > RECENT:
            return None
        with self._recent_lock:
            entries = [self._recent.get(v) for v in range(after + 1, upto + 1)]
        present = [e for e in entries if e is not None]
        if len(present) != len(entries):
            return None
        return [e for e in present
                if (not kind or e.kind == kind) and (not namespace or e.namespace == namespace)]

    def recent_changes(self, after: int, upto: int, kind: str = "",
                       namespace: str = "") -> builtins.list[Change] | None:
        """Changes (after, upto] from memory as documents, or None if any of them is not there."""
        entries = self.recent(after, upto, kind, namespace)
        if entries is None:
            return None
        return [Change(e.resource_version, e.type, json.loads(e.snapshot)) for e in entries]

    def _remember(self, recorded: builtins.list[Recorded]) -> None:
        with self._recent_lock:
            for r in recorded:
                self._recent[r.resource_version] = r
                self._recent_chars += len(r.snapshot)
                old = self._recent.get(r.resource_version - RECENT_DECODED)
                if old is not None:
                    old.stored = old.event = None  # watchers that far behind decode the snapshot
            # Oldest first (insertion order is version order, but for writers racing between
            # commit and here): O(1) per write instead of a scan of the whole window.
            floor = recorded[-1].resource_version - RECENT
            while self._recent:
                oldest = next(iter(self._recent))
                if self._recent_chars <= RECENT_CHARS and (len(self._recent) <= RECENT or oldest > floor):
                    break
                self._recent_chars -= len(self._recent.pop(oldest).snapshot)

    def state(self) -> tuple[int, int]:
        """(current version, compacted version)."""
        with self.db.read() as conn:
            row = conn.execute(_STATE).one()
        return row.resource_version, row.compacted_version

    def changes(self, after: int, upto: int, kind: str = "", namespace: str = "",
                limit: int = WATCH_BATCH) -> builtins.list[Change]:
        query = sa.select(E).where(E.c.resource_version > after, E.c.resource_version <= upto)
        if kind:
            query = query.where(E.c.kind == kind)
        if namespace:
            query = query.where(E.c.namespace == namespace)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(E.c.resource_version).limit(limit)).all()
        return [Change(r.resource_version, r.type, json.loads(r.snapshot)) for r in rows]

    def follow(self, kind: str = "", namespace: str = "", since: int = 0, *,
               active: Callable[[], bool], poll_seconds: float,
               bookmark_seconds: float) -> Iterator[Recorded | Change | int]:
        """The watch loop: the changes after ``since`` (0: from now) of ``kind`` in ``namespace``
        (empty: all), in version order, then each new one as it is committed, while ``active()``.
        An int is a bookmark: the version the watcher has seen everything up to. Raises Expired
        when ``since`` is outside the kept history (here, at once) or the watcher fell behind it
        (while iterating)."""
        rules.check_scope(kind, namespace)
        rules.check_since(since)
        current, compacted = self.state()
        if since and (since < compacted or since > current):
            raise Expired(f"resourceVersion {since} is outside the retained history "
                          f"({compacted + 1}..{current}); list again and watch from its version")
        return self._follow(kind, namespace, since or current, active, poll_seconds, bookmark_seconds)

    def _follow(self, kind: str, namespace: str, last: int, active: Callable[[], bool],
                poll_seconds: float, bookmark_seconds: float) -> Iterator[Recorded | Change | int]:
        # The first bookmark comes as soon as the watch has caught up with the store (after the
        # replay): a watcher from 0 ("now") learns which version "now" was.
        next_bookmark = time.monotonic()
        while active():
            # Woken by a local write: the changes are usually in memory (no query at all), and
            # each one's event is encoded once for every watcher.
            announced = self.notifier.version
            changes: builtins.list[Recorded] | builtins.list[Change] | None = (
                self.recent(last, announced, kind, namespace) if announced > last else None)
            if changes is not None:
                current = announced
            else:
                current, compacted = self.state()
                if last < compacted:
                    raise Expired(f"watch fell behind the retained history at {last}; list again")
                changes = self.changes(last, current, kind, namespace) if current > last else []
            yield from changes
            if len(changes) >= WATCH_BATCH:
                last = changes[-1].resource_version
                continue  # more to send before waiting
            last = max(last, current)
            if time.monotonic() >= next_bookmark:
                yield last
                next_bookmark = time.monotonic() + bookmark_seconds
            self.notifier.wait(current, min(poll_seconds, max(0.0, next_bookmark - time.monotonic())), kind)

    # -- writes --------------------------------------------------------------------------------

    def create_doc(self, doc: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        if dry_run:
            return rules.admit_new(doc)
        return self.create_stored(doc).fresh()

    def create_stored(self, doc: dict[str, Any]) -> Stored:
        out = rules.admit_new(doc)
        meta = out["metadata"]
        kind, namespace, name = out["kind"], meta["namespace"], meta["name"]
        spec_json, status_json = _dumps(out["spec"]), _dumps(out["status"])
        def write(conn: sa.Connection) -> tuple[Stored, Callable[[], None] | None]:
            version = self._lock(conn) + 1
            exists = conn.execute(_VERSION_BY_KEY, {"kind": kind, "namespace": namespace, "name": name}).first()
            if exists:
                raise AlreadyExists(f"{kind} {namespace}/{name} already exists")
            rules.check_owners_exist(out, lambda owner: conn.execute(
                _UID_IN_NAMESPACE, {"namespace": namespace, "uid": str(owner.get("uid") or "")}).first() is not None)
            meta["uid"] = str(uuid.uuid4())
            meta["resourceVersion"] = str(version)
            inserted = conn.execute(_INSERT_ROW, {
                **self._meta_columns(meta), "api_version": out["apiVersion"], "resource_version": version,
                "spec": spec_json, "status": status_json, "kind": kind, "namespace": namespace, "name": name,
                "uid": meta["uid"], "creation_timestamp": meta["creationTimestamp"],
            }).inserted_primary_key
            assert inserted is not None  # a one-row INSERT always reports its key
            row_id = inserted[0]
            head = {"apiVersion": out["apiVersion"], "kind": kind, "metadata": meta}
            stored = Stored(row_id, head, spec_json, status_json, doc=out)
            recorded = self._record(conn, [("ADDED", stored)])
            return stored, lambda: self._committed(recorded)

        return self._commits.run(write)

    def update_doc(self, doc: dict[str, Any]) -> dict[str, Any]:
        return self.update_stored(doc).fresh()

    def update_status_doc(self, doc: dict[str, Any]) -> dict[str, Any]:
        return self.update_status_stored(doc).fresh()

    def update_stored(self, doc: dict[str, Any]) -> Stored:
        return self._modify(doc, status_only=False)

    def update_status_stored(self, doc: dict[str, Any]) -> Stored:
        return self._modify(doc, status_only=True)

    def _modify(self, doc: dict[str, Any], *, status_only: bool) -> Stored:
        key = rules.identity(doc)
        expected = parse_version(rules.meta(doc).get("resourceVersion"))
        rules.check_halves(doc)
        # UpdateStatus is computed from the cached copy before taking the write lock (validating
        # and encoding are most of its work, and the lock serialises every writer); under the
        # lock one UPDATE applies it only if the row is still at the cached version.
        planned = self._status_from_cache(key, doc, expected) if status_only else None

        def write(conn: sa.Connection) -> tuple[Stored, Callable[[], None] | None]:
            version = self._lock(conn) + 1
            new = self._write_planned(conn, planned, version) if planned is not None else None
            if new is None:
                new = self._modify_row(conn, key, doc, expected, version, status_only=status_only)
                if new.version != version:
                    return new, None  # nothing changed: no new version, no watch event
            recorded = self._record(conn, [("MODIFIED", new)])
            return new, lambda: self._committed(recorded)

        return self._commits.run(write)

    def _status_from_cache(self, key: tuple[str, str, str], doc: dict[str, Any],
                           expected: int) -> tuple[Stored, dict[str, Any], str] | None:
        """(cached copy, new status, its JSON) for an UpdateStatus, or None when in doubt (not
        cached, another version expected, invalid input, nothing changed): the caller then
        reads the row under the lock."""
        cached = self._cache.get(key)
        if cached is None or (expected and expected != cached.version):
            return None
        try:
            status = rules.status_updated(cached.doc, doc)
        except Invalid:
            return None  # reported by the caller's path, against the row as it is now
        if status is None:
            return None  # "nothing changed" is only true if the cache is current: let the row say
        return cached, status, _dumps(status)

    def _write_planned(self, conn: sa.Connection, planned: tuple[Stored, dict[str, Any], str],
                       version: int) -> Stored | None:
        """Writes a planned status as ``version`` if the row is still at the planned-on version."""
        cached, status, status_json = planned
        written = conn.execute(_UPDATE_ROW_IF_AT, {"row_id": cached.id, "cached_version": cached.version,
                                                    "resource_version": version, "status": status_json})
        return _with_status(cached, status, version, status_json) if written.rowcount == 1 else None

    def _modify_row(self, conn: sa.Connection, key: tuple[str, str, str], doc: dict[str, Any], expected: int,
                    version: int, *, status_only: bool) -> Stored:
        """The new version read against the row itself (written), or the stored one if nothing changed."""
        kind, namespace, name = key
        row = conn.execute(_VERSION_BY_KEY_LOCKED, {"kind": kind, "namespace": namespace, "name": name}).first()
        if row is None:
            self._cache.drop(key)
            raise NotFound(f"{kind} {namespace}/{name} not found")
        if expected and expected != row.resource_version:
            raise Conflict(f"{kind} {namespace}/{name} was modified: resourceVersion is "
                           f"{row.resource_version}, not {expected}; re-read and retry")
        stored = self._cache.get(key)
        if stored is None or stored.version != row.resource_version:
            stored = _from_row(conn.execute(_ROW_BY_ID, {"row_id": row.id}).one())
            self._cache.put(stored)
        old = stored.doc
        if status_only:
            status = rules.status_updated(old, doc)
            if status is None:
                return stored  # nothing changed: no new version, no watch event
            new = _with_status(stored, status, version)
            columns = {"resource_version": version, "status": new.status_json}
        else:
            change = rules.updated(old, doc)
            if change is None:
                return stored  # nothing changed: no new version, no watch event
            meta, spec = change
            meta["resourceVersion"] = str(version)
            head = {**stored.head, "metadata": meta}
            spec_json = _dumps(spec) if spec is not None else stored.spec_json
            new = Stored(row.id, head, spec_json, stored.status_json,
                         doc={**head, "spec": spec if spec is not None else old["spec"], "status": old["status"]})
            columns = {**self._meta_columns(meta), "resource_version": version, "spec": spec_json}
        conn.execute(_UPDATE_ROW, {"row_id": row.id, **columns})
        return new

    def delete_docs(self, kind: str, namespace: str, name: str,
                    resource_version: int = 0) -> builtins.list[dict[str, Any]]:
        return [s.fresh() for s in self.delete_stored(kind, namespace, name, resource_version)]

    def delete_stored(self, kind: str, namespace: str, name: str, resource_version: int = 0) -> builtins.list[Stored]:
        kind, namespace, name = rules.key_of(kind, namespace, name)

        def write(conn: sa.Connection) -> tuple[builtins.list[Stored], Callable[[], None] | None]:
            current = self._lock(conn)
            # Ownership is found on the identity columns alone; only the doomed rows are read whole.
            rows = conn.execute(_OWNERSHIP_IN_NAMESPACE, {"namespace": namespace}).all()
            root = next((r for r in rows if r.kind == kind and r.name == name), None)
            if root is None:
                raise NotFound(f"{kind} {namespace}/{name} not found")
            if resource_version and resource_version != root.resource_version:
                raise Conflict(f"{kind} {namespace}/{name} was modified: resourceVersion is "
                               f"{root.resource_version}, not {resource_version}")
            order = _with_dependents(root, rows)
            full = {r.id: r for r in conn.execute(sa.select(R).where(R.c.id.in_(order))).all()}
            doomed = [_from_row(full[row_id], current + i + 1) for i, row_id in enumerate(order)]
            conn.execute(R.delete().where(R.c.id.in_([s.id for s in doomed])))
            delete_logs(conn, [s.key[2] for s in doomed if s.key[0] == "Trial"])
            recorded = self._record(conn, [("DELETED", s) for s in doomed])

            def after() -> None:
                for s in doomed:
                    self._cache.drop(s.key)
                self._committed(recorded, cache=False)

            return doomed, after

        return self._commits.run(write)

    # -- helpers -------------------------------------------------------------------------------

    def _committed(self, recorded: builtins.list[Recorded], *, cache: bool = True) -> None:
        """After the commit: cache the new versions, remember the changes, wake the watchers."""
        if cache:
            for r in recorded:
                self._cache.put(r.stored)  # type: ignore[arg-type]
        self._remember(recorded)
        self.notifier.notify(recorded[-1].resource_version, {r.kind for r in recorded})

    def _lock(self, conn: sa.Connection) -> int:
        """Locks the version counter for this transaction and returns its value."""
        return conn.execute(_LOCK).scalar_one()

    def _record(self, conn: sa.Connection, changes: builtins.list[tuple[str, Stored]]) -> builtins.list[Recorded]:
        recorded = [Recorded(change_type, stored, stored.snapshot()) for change_type, stored in changes]
        conn.execute(_INSERT_EVENTS, [{"resource_version": r.resource_version, "type": r.type, "kind": r.kind,
                                       "namespace": r.namespace, "name": s.key[2], "snapshot": r.snapshot}
                                      for r, (_, s) in zip(recorded, changes, strict=True)])
        top = recorded[-1].resource_version
        first = recorded[0].resource_version
        every = self.prune_every
        if top - (first - 1) >= every or top // every != (first - 1) // every:
            floor = top - self.history
            if floor > 0:
                conn.execute(E.delete().where(E.c.resource_version <= floor))
                compacted = sa.func.greatest(S.c.compacted_version, floor) \
                    if self.db.backend != "sqlite" else sa.func.max(S.c.compacted_version, floor)
                conn.execute(_SET_VERSION.values(resource_version=top, compacted_version=compacted))
                return recorded
        conn.execute(_SET_VERSION, {"resource_version": top})
        return recorded

    @staticmethod
    def _meta_columns(meta: dict[str, Any]) -> dict[str, Any]:
        return {
            "generation": meta["generation"],
            "labels": _dumps(meta["labels"]),
            "annotations": _dumps(meta["annotations"]),
            "owner_references": _dumps(meta["ownerReferences"]),
        }


def _with_dependents(root: Any, rows: Sequence[Any]) -> list[int]:
    """Row ids of ``root`` and, recursively, every row whose ownerReferences name a doomed uid."""
    children: dict[str, list[str]] = {}
    for r in rows:
        for owner in json.loads(r.owner_references):
            children.setdefault(owner.get("uid", ""), []).append(r.uid)
    ids = {r.uid: r.id for r in rows}
    return [ids[uid] for uid in rules.dependents(root.uid, children)]


class _SqlWatch(WatchStream):
    """The interface's watch over ``SqlResourceStore.follow``, decoding each change to a model.
    Like every store's watch it is opened by the first ``next()``, which raises its errors."""

    def __init__(self, store: SqlResourceStore, kind: str, namespace: str, since: int,
                 labels: Mapping[str, str] | None):
        self._store = store
        self._scope = (kind, namespace, since)
        self._labels = dict(labels or {})
        self._cancelled = threading.Event()
        self._changes: Iterator[Recorded | Change | int] | None = None  # opened by the first next()

    def __next__(self) -> WatchEvent:
        while True:
            if self._cancelled.is_set():
                raise StopIteration
            if self._changes is None:
                kind, namespace, since = self._scope
                self._changes = self._store.follow(
                    kind, namespace, since, active=lambda: not self._cancelled.is_set(),
                    poll_seconds=self._store.poll_seconds, bookmark_seconds=self._store.bookmark_seconds)
            item = next(self._changes)
            if isinstance(item, int):
                return WatchEvent(EventType.BOOKMARK, None, item)
            # A private copy: the recorded document is shared with the cache and other watchers.
            doc = item.doc if isinstance(item, Change) else json.loads(item.snapshot)
            if rules.selected(doc, self._labels):
                return WatchEvent(EventType(item.type), model_from_doc(doc), item.resource_version)

    def cancel(self) -> None:
        self._cancelled.set()
        self._store.notifier.interrupt()
