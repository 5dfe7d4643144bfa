"""``sextant.v1.ResourceStore`` gRPC service over ``SqlResourceStore``, including Watch."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import grpc

from services.db_manager.errors import grpc_errors
from services.db_manager.resource_store import Change, Recorded, SqlResourceStore
from sextant.api import store_pb2, store_pb2_grpc
from sextant.store.codec import doc_from_proto, proto_from_doc
from sextant.store.interface import Invalid

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

    def _doc(self, resource: store_pb2.Resource, *, ignored: str = "") -> dict[str, Any]:
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

    def Create(self, request: store_pb2.CreateRequest, context: grpc.ServicerContext) -> store_pb2.Resource:
        with grpc_errors(context, "Create"):
            doc = self._doc(request.resource)
            if request.dry_run:
                return proto_from_doc(self.store.create_doc(doc, dry_run=True))
            return self.store.create_stored(doc).resource()

    def Get(self, request: store_pb2.GetRequest, context: grpc.ServicerContext) -> store_pb2.Resource:
        with grpc_errors(context, "Get"):
            return self.store.read(request.kind, request.namespace, request.name).resource()

    def List(self, request: store_pb2.ListRequest, context: grpc.ServicerContext) -> store_pb2.ListResponse:
        with grpc_errors(context, "List"):
            items, version = self.store.list_stored(request.kind, request.namespace, dict(request.label_selector))
            return store_pb2.ListResponse(items=[s.resource() for s in items], resource_version=version)

    def Update(self, request: store_pb2.UpdateRequest, context: grpc.ServicerContext) -> store_pb2.Resource:
        with grpc_errors(context, "Update"):
            return self.store.update_stored(self._doc(request.resource, ignored="status")).resource()

    def UpdateStatus(self, request: store_pb2.UpdateRequest, context: grpc.ServicerContext) -> store_pb2.Resource:
        with grpc_errors(context, "UpdateStatus"):
            return self.store.update_status_stored(self._doc(request.resource, ignored="spec")).resource()

    def Delete(self, request: store_pb2.DeleteRequest, context: grpc.ServicerContext) -> store_pb2.DeleteResponse:
        with grpc_errors(context, "Delete"):
            deleted = self.store.delete_stored(request.kind, request.namespace, request.name,
                                               request.resource_version)
            return store_pb2.DeleteResponse(deleted=[s.resource() for s in deleted])

    def Watch(self, request: store_pb2.WatchRequest, context: grpc.ServicerContext) -> Iterator[store_pb2.WatchEvent]:
        if not self._watch_slots.acquire(blocking=False):
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many open watches; retry later")
        try:
            yield from self._watch(request, context)
        finally:
            self._watch_slots.release()

    def _watch(self, request: store_pb2.WatchRequest, context: grpc.ServicerContext) -> Iterator[store_pb2.WatchEvent]:
        labels = dict(request.label_selector)
        with grpc_errors(context, "Watch"):
            changes = self.store.follow(
                request.kind, request.namespace, request.since_resource_version,
                active=lambda: context.is_active() and not self._stopping.is_set(),
                poll_seconds=self.poll_seconds, bookmark_seconds=self.bookmark_seconds)
        while True:
            with grpc_errors(context, "Watch"):
                change = next(changes, None)
            if change is None:
                return
            if isinstance(change, int):
                yield store_pb2.WatchEvent(type=store_pb2.WatchEvent.BOOKMARK, resource_version=change)
                continue
            event = _event(change, labels)
            if event is not None:
                yield event


def _event(change: Recorded | Change, labels: dict[str, str]) -> store_pb2.WatchEvent | None:
    """The watch event of a change, or None if the label selector does not match it."""
    stored = change.stored if isinstance(change, Recorded) else None
    if stored is None:  # from the table, or remembered long ago: decode it for this watcher
        doc = change.doc if isinstance(change, Change) else json.loads(change.snapshot)
        if labels and any(doc["metadata"]["labels"].get(k) != v for k, v in labels.items()):
            return None
        return store_pb2.WatchEvent(type=WATCH_TYPES[change.type], resource=proto_from_doc(doc),
                                    resource_version=change.resource_version)
    assert isinstance(change, Recorded)  # only a change this process recorded carries ``stored``
    if labels and any(stored.head["metadata"]["labels"].get(k) != v for k, v in labels.items()):
        return None
    event = change.event
    if event is None:
        # Racing watchers may both build it; they build the same event.
        event = change.event = store_pb2.WatchEvent(type=WATCH_TYPES[change.type], resource=stored.resource(),
                                                    resource_version=change.resource_version)
    return event
