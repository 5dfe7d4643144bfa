"""``GrpcResourceStore``: the ResourceStore interface over the DB manager's gRPC API.

Calls are retried with exponential backoff (tenacity) while the DB manager is UNAVAILABLE,
up to ``retry_seconds``; other failures map to the interface's errors at once. ``watch``
returns a ``GrpcWatchStream`` that can be cancelled from another thread.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import grpc
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from sextant.api import store_pb2, store_pb2_grpc
from sextant.channel import open_channel
from sextant.store.codec import doc_from_proto, from_model, proto_from_doc, to_model
from sextant.store.interface import (
    AlreadyExists,
    Conflict,
    EventType,
    Expired,
    Invalid,
    NotFound,
    ResourceStore,
    StoreError,
    Unavailable,
    WatchEvent,
    WatchStream,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

log = logging.getLogger("sextant.store")

_EVENT_TYPES = {store_pb2.WatchEvent.ADDED: EventType.ADDED, store_pb2.WatchEvent.MODIFIED: EventType.MODIFIED,
                store_pb2.WatchEvent.DELETED: EventType.DELETED, store_pb2.WatchEvent.BOOKMARK: EventType.BOOKMARK}


def map_rpc_error(err: grpc.RpcError) -> StoreError:
    """The interface error for a failed call (the server's message is kept)."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else "") or str(code)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return Invalid(details.split("\n"))
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(details)
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return AlreadyExists(details)
    if code == grpc.StatusCode.ABORTED:
        return Conflict(details)
    if code == grpc.StatusCode.OUT_OF_RANGE:
        return Expired(details)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED):
        return Unavailable(f"{code.name}: {details}")
    return StoreError(f"{code.name}: {details}")


class GrpcResourceStore(ResourceStore):
    def __init__(self, target: str | grpc.Channel, *, token: str | None = None, tls_ca: str | None = None,
                 retry_seconds: float = 30.0, timeout: float = 30.0):
        self._own_channel = isinstance(target, str)
        self.channel = open_channel(target, token=token, tls_ca=tls_ca) if isinstance(target, str) else target
        self.stub = store_pb2_grpc.ResourceStoreStub(self.channel)
        self.retry_seconds = retry_seconds
        self.timeout = timeout

    def close(self) -> None:
        if self._own_channel:
            self.channel.close()

    def __enter__(self) -> GrpcResourceStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _call(self, method: str, request: Any) -> Any:
        def once() -> Any:
            try:
                return getattr(self.stub, method)(request, timeout=self.timeout)
            except grpc.RpcError as err:
                raise map_rpc_error(err) from None

        try:
            return once()
        except Unavailable:
            pass  # the retry policy is built only when needed: most calls succeed at once
        retrying = Retrying(retry=retry_if_exception_type(Unavailable), reraise=True,
                            stop=stop_after_delay(self.retry_seconds),
                            wait=wait_exponential_jitter(multiplier=0.1, max=2.0, jitter=0.1))
        return retrying(once)

    # -- ResourceStore -------------------------------------------------------------------------

    def create(self, resource: BaseModel, *, dry_run: bool = False) -> BaseModel:
        return to_model(self._call("Create", store_pb2.CreateRequest(resource=from_model(resource),
                                                                      dry_run=dry_run)))

    def get(self, kind: str, namespace: str, name: str) -> BaseModel:
        return to_model(self._call("Get", store_pb2.GetRequest(kind=kind, namespace=namespace, name=name)))

    def list(self, kind: str, namespace: str = "",
             labels: Mapping[str, str] | None = None) -> tuple[list[BaseModel], int]:
        reply = self._call("List", store_pb2.ListRequest(kind=kind, namespace=namespace,
                                                          label_selector=dict(labels or {})))
        return [to_model(r) for r in reply.items], reply.resource_version

    def create_document(self, doc: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """``create`` of a document, answering with the stored (with ``dry_run``: the admitted,
        defaulted, unstored) document; the server validates it, so no model is built here."""
        return doc_from_proto(self._call("Create", store_pb2.CreateRequest(resource=proto_from_doc(doc),
                                                                           dry_run=dry_run)))

    def update_document(self, doc: dict[str, Any]) -> dict[str, Any]:
        return doc_from_proto(self._call("Update", store_pb2.UpdateRequest(resource=proto_from_doc(doc))))

    def get_document(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """``get`` as a document, without building a model (the CLI prints documents)."""
        return doc_from_proto(self._call("Get", store_pb2.GetRequest(kind=kind, namespace=namespace, name=name)))

    def list_documents(self, kind: str, namespace: str = "",
                       labels: Mapping[str, str] | None = None) -> tuple[builtins.list[dict[str, Any]], int]:
        """``list`` as documents, without building models: for servers that pass resources on
        (the Kubernetes API server lists thousands of trials per request)."""
        reply = self._call("List", store_pb2.ListRequest(kind=kind, namespace=namespace,
                                                          label_selector=dict(labels or {})))
        return [doc_from_proto(r) for r in reply.items], reply.resource_version

    def update(self, resource: BaseModel) -> BaseModel:
        return to_model(self._call("Update", store_pb2.UpdateRequest(resource=from_model(resource))))

    def update_status(self, resource: BaseModel) -> BaseModel:
        return to_model(self._call("UpdateStatus", store_pb2.UpdateRequest(resource=from_model(resource))))

    def delete(self, kind: str, namespace: str, name: str, resource_version: int = 0) -> builtins.list[BaseModel]:
        reply = self._call("Delete", store_pb2.DeleteRequest(kind=kind, namespace=namespace, name=name,
                                                             resource_version=resource_version))
        return [to_model(r) for r in reply.deleted]

    def delete_documents(self, kind: str, namespace: str, name: str) -> builtins.list[dict[str, Any]]:
        """``delete``, answering with the deleted resources as documents."""
        reply = self._call("Delete", store_pb2.DeleteRequest(kind=kind, namespace=namespace, name=name))
        return [doc_from_proto(r) for r in reply.deleted]

    def watch(self, kind: str = "", namespace: str = "", since: int = 0,
              labels: Mapping[str, str] | None = None) -> GrpcWatchStream:
        request = store_pb2.WatchRequest(kind=kind, namespace=namespace, since_resource_version=since,
                                         label_selector=dict(labels or {}))
        return GrpcWatchStream(self.stub.Watch(request))


    def watch_documents(self, kind: str = "", namespace: str = "", since: int = 0,
                        labels: Mapping[str, str] | None = None,
                        ) -> Iterator[tuple[EventType, dict[str, Any] | None, int]]:
        """``watch`` as (type, document, resource version), without building models (the CLI's
        ``get -w``). The document is None for a BOOKMARK."""
        request = store_pb2.WatchRequest(kind=kind, namespace=namespace, since_resource_version=since,
                                         label_selector=dict(labels or {}))
        try:
            for pb in self.stub.Watch(request):
                event_type = _EVENT_TYPES.get(pb.type)
                if event_type is None:
                    raise StoreError(f"unknown watch event type {pb.type}")
                doc = doc_from_proto(pb.resource) if event_type != EventType.BOOKMARK else None
                yield event_type, doc, pb.resource_version
        except grpc.RpcError as err:
            raise map_rpc_error(err) from None


class GrpcWatchStream(WatchStream):
    """Events from one Watch call. Iterating raises Expired (relist), Unavailable (the stream
    broke: watch again from the last version) or another StoreError; ``cancel()`` ends it."""

    def __init__(self, call: Any):
        self._call = call
        self._cancelled = threading.Event()

    def __next__(self) -> WatchEvent:
        try:
            pb = next(self._call)
        except grpc.RpcError as err:
            if self._cancelled.is_set():
                raise StopIteration from None
            raise map_rpc_error(err) from None
        kind = _EVENT_TYPES.get(pb.type)
        if kind is None:
            raise StoreError(f"unknown watch event type {pb.type}")
        resource = to_model(pb.resource) if kind != EventType.BOOKMARK else None
        return WatchEvent(kind, resource, pb.resource_version)

    def cancel(self) -> None:
        self._cancelled.set()
        self._call.cancel()
