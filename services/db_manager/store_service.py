"""``sextant.v1.ResourceStore`` gRPC service over ``SqlResourceStore``, including Watch."""

from __future__ import annotations

import json
import logging
import threading
import time

import grpc

from services.db_manager.errors import grpc_errors
from services.db_manager.names import kind_errors, namespace_errors
from services.db_manager.resource_store import Change, Recorded, SqlResourceStore
from sextant.api import store_pb2, store_pb2_grpc
from sextant.store.codec import doc_from_proto, proto_from_doc
from sextant.store.interface import Expired, Invalid

log = logging.getLogger("sextant.db_manager")

WATCH_TYPES = {"ADDED": store_pb2.WatchEvent.ADDED, "MODIFIED": store_pb2.WatchEvent.MODIFIED,
               "DELETED": store_pb2.WatchEvent.DELETED}


class ResourceStoreService(store_pb2_grpc.ResourceStoreServicer):
    def __init__(self, store: SqlResourceStore, *, max_resource_bytes: int = 3 * 1024 * 1024,
                 max_watches: int = 100, poll_seconds: float = 1.0, bookmark_seconds: float = 10.0):
        self.store = store
        self.max_resource_bytes = max_resource_bytes
        self.poll_seconds = poll_seconds
        self.bookmark_seconds = bookmark_seconds
        self._watch_slots = threading.BoundedSemaphore(max_watches)
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Ends every open watch (clients reconnect and resume from their last version)."""
        self._stopping.set()
        self.store.notifier.close()

    def _doc(self, resource: store_pb2.Resource, *, ignored: str = "") -> dict:
        size = resource.ByteSize()
        if size > self.max_resource_bytes:
            raise Invalid([f"resource: {size} bytes is larger than the limit of {self.max_resource_bytes}"])
        if ignored:
            # UpdateStatus ignores the spec and Update the status. A client that read the
            # resource sends that part back as the same text: then it is known to be valid and
            # need not be decoded again (a Suggestion's status holds every assignment).
            m = resource.metadata
            cached = self.store.cached(resource.kind, m.namespace or "default", m.name)
            if cached is not None:
                if ignored == "spec" and cached.spec_json == resource.spec_json:
                    return doc_from_proto(resource, spec=cached.doc["spec"])
                if ignored == "status" and cached.status_json == resource.status_json:
                    return doc_from_proto(resource, status=cached.doc["status"])
        return doc_from_proto(resource)

    # Replies are the stored resources' wire forms, built once per version and shared.

    def Create(self, request, context):
        with grpc_errors(context, "Create"):
            doc = self._doc(request.resource)
            if request.dry_run:
                return proto_from_doc(self.store.create(doc, dry_run=True))
            return self.store.create_stored(doc).resource()

    def Get(self, request, context):
        with grpc_errors(context, "Get"):
            return self.store.read(request.kind, request.namespace, request.name).resource()

    def List(self, request, context):
        with grpc_errors(context, "List"):
            _check_scope(request.kind, request.namespace)
            items, version = self.store.list_stored(request.kind, request.namespace, dict(request.label_selector))
            return store_pb2.ListResponse(items=[s.resource() for s in items], resource_version=version)

    def Update(self, request, context):
        with grpc_errors(context, "Update"):
            return self.store.update_stored(self._doc(request.resource, ignored="status")).resource()

    def UpdateStatus(self, request, context):
        with grpc_errors(context, "UpdateStatus"):
            return self.store.update_status_stored(self._doc(request.resource, ignored="spec")).resource()

    def Delete(self, request, context):
        with grpc_errors(context, "Delete"):
            deleted = self.store.delete_stored(request.kind, request.namespace, request.name,
                                               request.resource_version)
            return store_pb2.DeleteResponse(deleted=[s.resource() for s in deleted])

    def Watch(self, request, context):
        if not self._watch_slots.acquire(blocking=False):
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many open watches; retry later")
        try:
            yield from self._watch(request, context)
        finally:
            self._watch_slots.release()

    def _watch(self, request, context):
        kind, namespace, labels = request.kind, request.namespace, dict(request.label_selector)
        with grpc_errors(context, "Watch"):
            _check_scope(kind, namespace)
            if request.since_resource_version < 0:
                raise Invalid(["since_resource_version: must not be negative"])
            current, compacted = self.store.state()
            since = request.since_resource_version
            if since and (since < compacted or since > current):
                raise Expired(f"resourceVersion {since} is outside the retained history "
                              f"({compacted + 1}..{current}); list again and watch from its version")
        last = since or current
        next_bookmark = time.monotonic() + self.bookmark_seconds
        while context.is_active() and not self._stopping.is_set():
            with grpc_errors(context, "Watch"):
                # Woken by a local write: the changes are usually in memory (no query at all),
                # and each one's event is encoded once for every watcher.
                announced = self.store.notifier.version
                changes = self.store.recent(last, announced, kind, namespace) if announced > last else None
                if changes is not None:
                    current = announced
                else:
                    current, compacted = self.store.state()
                    if last < compacted:
                        raise Expired(f"watch fell behind the retained history at {last}; list again")
                    changes = self.store.changes(last, current, kind, namespace) if current > last else []
            for change in changes:
                event = _event(change, labels)
                if event is not None:
                    yield event
            if len(changes) >= 1000:
                last = changes[-1].resource_version
                continue  # more to send before waiting
            last = max(last, current)
            if time.monotonic() >= next_bookmark:
                yield store_pb2.WatchEvent(type=store_pb2.WatchEvent.BOOKMARK, resource_version=last)
                next_bookmark = time.monotonic() + self.bookmark_seconds
            self.store.notifier.wait(current, min(self.poll_seconds, max(0.0, next_bookmark - time.monotonic())),
                                     kind)


def _event(change: Recorded | Change, labels: dict[str, str]) -> store_pb2.WatchEvent | None:
    """The watch event of a change, or None if the label selector does not match it."""
    stored = change.stored if isinstance(change, Recorded) else None
    if stored is None:  # from the table, or remembered long ago: decode it for this watcher
        doc = change.doc if isinstance(change, Change) else json.loads(change.snapshot)
        if labels and any(doc["metadata"]["labels"].get(k) != v for k, v in labels.items()):
            return None
        return store_pb2.WatchEvent(type=WATCH_TYPES[change.type], resource=proto_from_doc(doc),
                                    resource_version=change.resource_version)
    if labels and any(stored.head["metadata"]["labels"].get(k) != v for k, v in labels.items()):
        return None
    event = change.event
    if event is None:
        # Racing watchers may both build it; they build the same event.
        event = change.event = store_pb2.WatchEvent(type=WATCH_TYPES[change.type], resource=stored.resource(),
                                                    resource_version=change.resource_version)
    return event


def _check_scope(kind: str, namespace: str) -> None:
    errors = (kind_errors(kind) if kind else []) + (namespace_errors(namespace, "namespace") if namespace else [])
    if errors:
        raise Invalid(errors)
