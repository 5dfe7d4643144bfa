"""``KubernetesResourceStore``: the ResourceStore interface over a Kubernetes API server, with the
real ``kubernetes`` client, so that Sextant's controllers run on Katib's custom resources.

Experiments, Trials and Suggestions are ``kubeflow.org/v1beta1`` custom resources; Events are
core/v1 Events (converted by ``sextant.resources.core_events``). What the interface asks and how
it maps onto the API:

* **versions** are the API server's ``resourceVersion``s, read as integers (etcd revisions are);
* **create** defaults and validates an Experiment here too (the cluster's admission webhook does
  it again), then POSTs; a status given at create is written through ``/status`` afterwards,
  because the API server drops it from a create;
* **update / update_status** are read-modify-write PUTs (``/status`` for the status): a write
  carrying a resourceVersion that is not current is Conflict at once; a write without one is
  applied to the current object, re-read and retried when another writer wins (409); a write
  at a version the store has seen starts from that copy instead of a GET (``_SeenDocs``);
* **delete** removes the object and everything its ownerReferences tie to it in the namespace;
  the cluster's garbage collector (or Sextant's API server) removes the dependents, and what it
  has not removed within ``collect_seconds`` is deleted here, so the answer lists them all;
* **Katib's finalizers** on an object being deleted are removed wherever the store sees it, on
  a watch event or in a list (``release_katib_finalizers``);
* **watch** is the API's watch (``allowWatchBookmarks``); a watch from 0 starts at the version of
  a one-item list; an ``ERROR`` event with 410 Gone is Expired (the informer lists again); a
  stream the server ends, or that stays silent for ``watch_idle_seconds`` (then with a bookmark at
  the last version), is re-opened from the last version seen. Watching every kind merges one
  watch per kind in version order, each kind's bookmarks telling how far it has got.

Calls that fail with 429, 5xx or a broken connection are retried with exponential backoff (and
``Retry-After``) for up to ``retry_seconds``, then raise Unavailable.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import client
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_delay

from sextant.resources.core_events import core_event, store_event
from sextant.resources.models import API_GROUP, to_doc
from sextant.store import rules
from sextant.store.codec import model_from_doc, parse_version
from sextant.store.interface import (
    AlreadyExists,
    Conflict,
    EventType,
    Expired,
    Invalid,
    NotFound,
    Resource,
    ResourceStore,
    StoreError,
    Unavailable,
    WatchEvent,
    WatchStream,
)

log = logging.getLogger("sextant.store.kubernetes")

Doc = dict[str, Any]
KATIB_VERSION = "v1beta1"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_META_FIELDS = ("name", "generateName", "namespace", "uid", "resourceVersion", "generation", "labels",
                "annotations", "ownerReferences", "creationTimestamp", "deletionTimestamp", "finalizers")


@dataclass(frozen=True)
class KindPath:
    kind: str
    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "", subresource: str = "") -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [root]
        if namespace:
            parts.append(f"namespaces/{quote(namespace, safe='')}")
        parts.append(self.plural)
        if name:
            parts.append(quote(name, safe=""))
        if subresource:
            parts.append(subresource)
        return "/".join(parts)


KIND_PATHS: dict[str, KindPath] = {
    "Experiment": KindPath("Experiment", API_GROUP, KATIB_VERSION, "experiments"),
    "Suggestion": KindPath("Suggestion", API_GROUP, KATIB_VERSION, "suggestions"),
    "Trial": KindPath("Trial", API_GROUP, KATIB_VERSION, "trials"),
    "Event": KindPath("Event", "", "v1", "events"),
}

# The finalizers Katib's controller adds (and removes when the object is deleted).
KATIB_FINALIZERS: dict[str, set[str]] = {"Experiment": {"update-prometheus-metrics"},
                                         "Trial": {"clean-metrics-in-db"}}

# Every request this module makes -> (api group, resource, verb): the RBAC of a Sextant
# controller running on this store (deploy/kubernetes/katib-dropin) is exactly these. The store's
# conformance and fault tests record each request it sends and check it is one of these.
_KATIB_VERBS = ("create", "delete", "get", "list", "update", "watch")
_EVENT_VERBS = ("create", "delete", "get", "list", "watch")  # events are never updated
API_CALLS: tuple[tuple[str, str, str], ...] = (
    *((p.group, p.plural, verb) for p in KIND_PATHS.values() if p.kind != "Event" for verb in _KATIB_VERBS),
    *((p.group, f"{p.plural}/status", "update") for p in KIND_PATHS.values() if p.kind != "Event"),
    *(("", "events", verb) for verb in _EVENT_VERBS),
    *((KIND_PATHS[kind].group, KIND_PATHS[kind].plural, "patch") for kind in ("Experiment", "Trial")),
)

# Owner references with ``blockOwnerDeletion`` (Katib sets them so, and so do Sextant's controllers
# on this store) need ``update`` on the owner's ``finalizers`` subresource wherever the API server
# enforces owner-reference permission (the OwnerReferencesPermissionEnforcement admission plugin):
# each controller, for the kind that owns what it creates. Its own RBAC in the overlay.
OWNER_FINALIZER_CALLS: dict[str, tuple[str, str, str]] = {
    # its Suggestions and Trials (services/experiment_controller/trials.py, owner_reference)
    "experiment_controller": (API_GROUP, "experiments/finalizers", "update"),
    # the algorithm Deployment, Service, PVC, early-stopping account (sextant/runtime/kubernetes.py)
    "suggestion_controller": (API_GROUP, "suggestions/finalizers", "update"),
    # the trial's Job (sextant/runtime/kubernetes.py)
    "trial_controller": (API_GROUP, "trials/finalizers", "update"),
}


# -- documents ---------------------------------------------------------------------------------


def from_kube(kind: str, obj: Doc) -> Doc:
    """A store document of an API object: Sextant's shape for events, metadata cut to the fields
    Sextant models (the server's bookkeeping such as managedFields is dropped)."""
    if kind == "Event":
        obj = store_event(obj)
    meta = obj.get("metadata") or {}
    metadata = {k: meta[k] for k in _META_FIELDS if meta.get(k) is not None}
    metadata.setdefault("generation", 1)
    doc = {"apiVersion": obj.get("apiVersion") or KIND_PATHS[kind].api_version, "kind": kind,
           "metadata": metadata, "spec": obj.get("spec") or {}, "status": obj.get("status") or {}}
    return to_doc(model_from_doc(doc))  # every field present, as the write rules expect


def to_kube(doc: Doc) -> Doc:
    """The API object of a store document."""
    if doc.get("kind") == "Event":
        return core_event(doc)
    meta = {k: v for k, v in (doc.get("metadata") or {}).items() if v not in (None, "", {}, [])}
    return {"apiVersion": KIND_PATHS[doc["kind"]].api_version, "kind": doc["kind"], "metadata": meta,
            "spec": doc.get("spec") or {}, "status": doc.get("status") or {}}


def _version(obj: Doc) -> int:
    return parse_version((obj.get("metadata") or {}).get("resourceVersion"))


def _selector(labels: Mapping[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


# -- errors --------------------------------------------------------------------------------------


class _Retryable(Unavailable):
    def __init__(self, message: str, retry_after: float = 0.0):
        super().__init__(message)
        self.retry_after = retry_after


def _status_message(body: bytes) -> tuple[str, str, list[str]]:
    """(reason, message, causes as "field: message") of a Kubernetes Status body."""
    try:
        status = json.loads(body or b"{}")
    except ValueError:
        return "", body[:500].decode(errors="replace"), []
    if not isinstance(status, dict):
        return "", str(status)[:500], []
    causes = [f"{c.get('field')}: {c.get('message')}" if c.get("field") else str(c.get("message"))
              for c in (status.get("details") or {}).get("causes") or [] if isinstance(c, dict)]
    return str(status.get("reason") or ""), str(status.get("message") or ""), causes


def error_of(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> StoreError:
    """The interface error for an API answer that is not a success."""
    reason, message, causes = _status_message(body)
    message = message or f"HTTP {status}"
    if status == 404:
        return NotFound(message)
    if status == 409:
        return AlreadyExists(message) if reason == "AlreadyExists" else Conflict(message)
    if status == 422 or (status == 400 and causes):
        return Invalid(causes or [message])
    if status == 410:
        return Expired(message)
    if status in RETRYABLE_STATUS:
        retry_after = 0.0
        try:
            retry_after = float((headers or {}).get("Retry-After") or 0)
        except ValueError:
            pass
        return _Retryable(f"HTTP {status} {reason}: {message}", retry_after)
    if status == 400:
        return Invalid([message])
    return StoreError(f"HTTP {status} {reason}: {message}")


def _wait(state: RetryCallState) -> float:
    """Exponential backoff from 0.1 s to 2 s, or longer if the server said when to come back."""
    backoff: float = min(2.0, 0.1 * 2.0 ** (state.attempt_number - 1))
    outcome = state.outcome
    err = outcome.exception() if outcome is not None else None
    return max(backoff, float(getattr(err, "retry_after", 0.0)))


class _SeenDocs:
    """The newest copy of each object this store has seen (watch events, reads, writes), so a
    write that names the version it was based on needs no GET first: an object's content at one
    resourceVersion never changes, so a copy at exactly that version *is* the current object if
    the write succeeds -- and if it is not current, the PUT (guarded by that version) gets 409,
    which is the Conflict the GET would have found. Least recently seen objects go first."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._docs: OrderedDict[tuple[str, str, str], Doc] = OrderedDict()
        self._lock = threading.Lock()

    def saw(self, doc: Doc) -> None:
        meta = doc.get("metadata") or {}
        key = (doc.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""))
        version = _version(doc)
        with self._lock:
            known = self._docs.get(key)
            if known is not None and _version(known) > version:
                return  # a late answer must not replace a newer copy
            self._docs[key] = doc
            self._docs.move_to_end(key)
            while len(self._docs) > self.size:
                self._docs.popitem(last=False)

    def forget(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._docs.pop((kind, namespace, name), None)

    def at(self, kind: str, namespace: str, name: str, version: int) -> Doc | None:
        """A private copy of the object at exactly ``version``, if that is the copy held."""
        with self._lock:
            doc = self._docs.get((kind, namespace, name))
        return copy.deepcopy(doc) if doc is not None and _version(doc) == version else None


# -- the store -----------------------------------------------------------------------------------


class KubernetesResourceStore(ResourceStore):
    def __init__(self, api: client.ApiClient, *, retry_seconds: float = 30.0, timeout: float = 30.0,
                 write_attempts: int = 10, collect_seconds: float = 10.0, watch_idle_seconds: float = 20.0):
        self.api = api
        self.retry_seconds = retry_seconds
        self.timeout = timeout
        self.write_attempts = write_attempts
        self.collect_seconds = collect_seconds
        self.watch_idle_seconds = watch_idle_seconds
        self._seen = _SeenDocs()

    @classmethod
    def from_config(cls, kubeconfig: str | None = None, context: str | None = None,
                    **options: Any) -> KubernetesResourceStore:
        """From the in-cluster service account (inside a pod) or a kube-config file."""
        from sextant.runtime.kubernetes import api_client_from_config

        return cls(api_client_from_config(kubeconfig, context), **options)

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]  # the client's methods are not annotated

    def __enter__(self) -> KubernetesResourceStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- HTTP --------------------------------------------------------------------------------------

    def open(self, method: str, path: str, query: Mapping[str, str] | None = None,
             body: Doc | builtins.list[Doc] | None = None,
             *, read_timeout: float | None = None) -> urllib3.BaseHTTPResponse:
        """Sends one request and returns the unread response of a success (a watch reads it as a
        stream); an error answer raises its interface error."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json-patch+json" if isinstance(body, list) else "application/json"
        params = self.api.param_serialize(
            method, path, query_params=list((query or {}).items()), header_params=headers, body=body,
            auth_settings=["BearerToken"])
        try:
            response: urllib3.BaseHTTPResponse = self.api.call_api(
                *params, _request_timeout=(min(10.0, self.timeout), read_timeout or self.timeout)).response
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise _Retryable(f"{method} {path}: {err}") from None
        except client.ApiException as err:  # the client's own failures (TLS)
            raise Unavailable(f"{method} {path}: {err.reason}") from None
        if response.status >= 300:
            try:
                body_bytes = response.read()
            finally:
                response.release_conn()
            raise error_of(response.status, body_bytes, dict(response.headers))
        return response

    def request(self, method: str, path: str, query: Mapping[str, str] | None = None,
                body: Doc | builtins.list[Doc] | None = None) -> Doc:
        """One API call, retried while the server is unavailable or overloaded; the JSON answer."""
        def once() -> Doc:
            response = self.open(method, path, query, body)
            try:
                data = response.read()
            except (urllib3.exceptions.HTTPError, OSError) as err:
                raise _Retryable(f"{method} {path}: {err}") from None
            finally:
                response.release_conn()
            value = json.loads(data or b"{}")
            return value if isinstance(value, dict) else {}

        retrying = Retrying(retry=retry_if_exception_type(_Retryable), reraise=True,
                            stop=stop_after_delay(self.retry_seconds), wait=_wait)
        try:
            return retrying(once)
        except _Retryable as err:
            raise Unavailable(str(err)) from None

    # -- reads ---------------------------------------------------------------------------------------

    def _get(self, kind: str, namespace: str, name: str) -> Doc:
        kind, namespace, name = rules.key_of(kind, namespace, name)
        try:
            doc = from_kube(kind, self.request("GET", KIND_PATHS[kind].path(namespace, name)))
        except NotFound:
            self._seen.forget(kind, namespace, name)
            raise
        self._seen.saw(doc)
        return doc

    def get(self, kind: str, namespace: str, name: str) -> Resource:
        return model_from_doc(self._get(kind, namespace, name))

    def _list(self, kind: str, namespace: str, labels: Mapping[str, str] | None,
              limit: int = 0) -> tuple[builtins.list[Doc], int]:
        query = {"labelSelector": _selector(labels)} if labels else {}
        if limit:
            query["limit"] = str(limit)
        answer = self.request("GET", KIND_PATHS[kind].path(namespace), query)
        version = _version(answer)
        items = answer.get("items") or []
        for item in items:
            # An object deleted while no controller ran shows up only here (an informer's first
            # list, or its list after 410 Gone), never as a watch event.
            self.release_katib_finalizers(kind, item)
        return [from_kube(kind, item) for item in items], version

    def list(self, kind: str, namespace: str = "",
             labels: Mapping[str, str] | None = None) -> tuple[builtins.list[Resource], int]:
        rules.check_scope(kind, namespace)
        docs: builtins.list[Doc] = []
        versions = []
        for one in [kind] if kind else builtins.list(KIND_PATHS):
            items, version = self._list(one, namespace, labels)
            docs += items
            versions.append(version)
        docs.sort(key=lambda d: (d["metadata"].get("namespace", ""), d["metadata"]["name"], d["kind"]))
        # Several kinds: the oldest of their versions, so that a watch from it misses nothing.
        return [model_from_doc(d) for d in docs], min(versions)

    def current_version(self, kind: str = "Trial", namespace: str = "") -> int:
        """The API server's version now (a one-item list)."""
        return self._list(kind, namespace, None, limit=1)[1]

    # -- writes --------------------------------------------------------------------------------------

    def create(self, resource: Resource, *, dry_run: bool = False) -> Resource:
        doc = rules.admit_new(to_doc(resource))
        kind, namespace, _ = rules.identity(doc)
        body = to_kube({**doc, "metadata": {k: v for k, v in doc["metadata"].items()
                                            if k not in ("uid", "resourceVersion", "generation", "creationTimestamp")}})
        path = KIND_PATHS[kind].path(namespace)
        if dry_run:
            self.request("POST", path, {"dryRun": "All"}, body)
            return model_from_doc(doc)
        created = from_kube(kind, self.request("POST", path, None, body))
        if kind != "Event" and doc["status"] and created["status"] != doc["status"]:
            # The API server keeps no status from a create: write it as its own step.
            return self._write({**created, "status": doc["status"]}, status_only=True)
        return model_from_doc(created)

    def update(self, resource: Resource) -> Resource:
        return self._write(to_doc(resource), status_only=False)

    def update_status(self, resource: Resource) -> Resource:
        return self._write(to_doc(resource), status_only=True)

    def _write(self, doc: Doc, *, status_only: bool) -> Resource:
        kind, namespace, name = rules.identity(doc)
        if kind == "Event":
            raise Invalid(["kind: Events are written once; they cannot be updated"])
        rules.check_halves(doc)
        expected = parse_version(rules.meta(doc).get("resourceVersion"))
        kind_path = KIND_PATHS[kind]
        for attempt in range(self.write_attempts):
            # A write based on a version this store has seen starts from that copy (see
            # _SeenDocs); a blind write, or one after a 409, reads the object first.
            seen = self._seen.at(kind, namespace, name, expected) if expected and not attempt else None
            old = seen if seen is not None else self._get(kind, namespace, name)
            current = _version(old)
            if expected and current != expected:
                raise Conflict(f"{kind} {namespace}/{name} was modified: resourceVersion is {current}, not "
                               f"{expected}; re-read and retry")
            if status_only:
                status = rules.status_updated(old, doc)
                if status is None:
                    return model_from_doc(old)  # nothing changes: no write, no new version
                new = {**old, "status": status}
            else:
                change = rules.updated(old, doc)
                if change is None:
                    return model_from_doc(old)
                meta, spec = change
                new = {**old, "metadata": meta, "spec": spec if spec is not None else old["spec"]}
            try:
                written = self.request("PUT", kind_path.path(namespace, name, "status" if status_only else ""),
                                       None, to_kube(new))
            except Conflict:
                if expected:
                    raise
                log.debug("write conflict, re-reading", extra={"kind": kind, "name": name})
                continue
            result = from_kube(kind, written)
            self._seen.saw(result)
            return model_from_doc(result)
        raise Conflict(f"{kind} {namespace}/{name}: {self.write_attempts} writes in a row lost to other "
                       "writers; re-read and retry")

    def delete(self, kind: str, namespace: str, name: str, resource_version: int = 0) -> builtins.list[Resource]:
        kind, namespace, name = rules.key_of(kind, namespace, name)
        everything: dict[str, Doc] = {}
        listed_at = 0
        for one in KIND_PATHS:
            items, version = self._list(one, namespace, None)
            everything.update({d["metadata"].get("uid", ""): d for d in items})
            listed_at = max(listed_at, version)
        root = next((d for d in everything.values()
                     if d["kind"] == kind and d["metadata"]["name"] == name), None)
        if root is None:
            raise NotFound(f"{kind} {namespace}/{name} not found")
        if resource_version and _version(root) != resource_version:
            raise Conflict(f"{kind} {namespace}/{name} was modified: resourceVersion is {_version(root)}, "
                           f"not {resource_version}; re-read and retry")
        children: dict[str, builtins.list[str]] = {}
        for d in everything.values():
            for owner in d["metadata"].get("ownerReferences") or []:
                children.setdefault(owner.get("uid", ""), []).append(d["metadata"].get("uid", ""))
        dependents = rules.dependents(root["metadata"]["uid"], children)[1:]
        # The collector's deletions are seen on a watch opened before the delete.
        watch = _MergedWatch(self, "", namespace, None, listed_at, ordered=False) if dependents else None
        options: Doc = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background",
                        "preconditions": {"uid": root["metadata"]["uid"]}}
        if resource_version:
            options["preconditions"]["resourceVersion"] = str(resource_version)
        try:
            gone = [from_kube(kind, self.request("DELETE", KIND_PATHS[kind].path(namespace, name), None, options))]
            if watch is not None:
                gone += self._collected(watch, [everything[uid] for uid in dependents])
        finally:
            if watch is not None:
                watch.cancel()
        return [model_from_doc(d) for d in [gone[0], *sorted(gone[1:], key=_version)]]

    def _collected(self, watch: _MergedWatch, dependents: builtins.list[Doc]) -> builtins.list[Doc]:
        """The dependents as deleted: seen going on ``watch`` within ``collect_seconds``, else
        deleted here."""
        waiting = {d["metadata"]["uid"]: d for d in dependents}
        gone: builtins.list[Doc] = []
        deadline = time.monotonic() + self.collect_seconds
        timer = threading.Timer(self.collect_seconds, watch.cancel)
        timer.start()
        try:
            for event in watch:
                if event.type == EventType.DELETED and event.resource is not None:
                    doc = to_doc(event.resource)
                    if waiting.pop(doc["metadata"].get("uid", ""), None) is not None:
                        doc["metadata"]["resourceVersion"] = str(event.resource_version)
                        gone.append(doc)
                if not waiting or time.monotonic() > deadline:
                    break
        except StoreError as err:
            log.info("cascade watch ended; deleting the rest directly", extra={"error": str(err)})
        finally:
            timer.cancel()
        for uid, doc in waiting.items():
            meta = doc["metadata"]
            try:
                gone.append(from_kube(doc["kind"], self.request(
                    "DELETE", KIND_PATHS[doc["kind"]].path(meta["namespace"], meta["name"]), None,
                    {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background",
                     "preconditions": {"uid": uid}})))
            except NotFound:
                continue  # collected after the watch stopped looking
        return gone

    def release_katib_finalizers(self, kind: str, obj: Doc) -> bool:
        """Removes the finalizers Katib's controller puts on what it creates from an object being
        deleted: Sextant stands in for that controller, which would remove them, and keeps none
        of its own, so without this an adopted object's deletion would wait for ever. Called for
        every object a watch event or a list shows. The patch is guarded by the version it was
        computed from (a concurrent writer makes it fail, harmlessly: the next event or list
        tries again). True if a patch was sent and accepted."""
        meta = obj.get("metadata") or {}
        finalizers = meta.get("finalizers") or []
        if not meta.get("deletionTimestamp") or not set(finalizers) & KATIB_FINALIZERS.get(kind, set()):
            return False
        keep = [f for f in finalizers if f not in KATIB_FINALIZERS[kind]]
        patch: builtins.list[Doc] = [{"op": "test", "path": "/metadata/resourceVersion", "value": meta.get("resourceVersion")},
                 {"op": "replace", "path": "/metadata/finalizers", "value": keep}]
        path = KIND_PATHS[kind].path(meta.get("namespace", ""), meta.get("name", ""))
        try:
            self.request("PATCH", path, None, patch)
        except StoreError as err:
            log.info("Katib's finalizers not released yet", extra={"kind": kind, "name": meta.get("name"),
                                                                    "error": str(err)})
            return False
        log.info("Katib's finalizers released", extra={"kind": kind, "name": meta.get("name")})
        return True

    # -- watch ---------------------------------------------------------------------------------------

    def watch(self, kind: str = "", namespace: str = "", since: int = 0,
              labels: Mapping[str, str] | None = None) -> WatchStream:
        if kind:
            return _KindWatch(self, kind, namespace, labels, since)
        return _MergedWatch(self, kind, namespace, labels, since, ordered=True)


class _KindWatch(WatchStream):
    """The API watch of one kind; opened by the first ``next()``, re-opened from the last version
    when the server ends it, ended by ``cancel()`` from any thread."""

    def __init__(self, store: KubernetesResourceStore, kind: str, namespace: str,
                 labels: Mapping[str, str] | None, since: int):
        self._store = store
        self._kind, self._namespace, self._labels = kind, namespace, dict(labels or {})
        self._since = since
        self._last = -1  # -1: not opened yet
        self._response: urllib3.BaseHTTPResponse | None = None
        self._lines: Iterator[bytes] | None = None
        self._cancelled = threading.Event()
        self._lock = threading.Lock()

    def _open(self) -> None:
        if self._last < 0:
            rules.check_scope(self._kind, self._namespace)
            rules.check_since(self._since)
            if not self._kind:
                raise Invalid(["kind: required for a watch of one kind"])
            self._last = self._since or self._store.current_version(self._kind, self._namespace)
        query = {"watch": "true", "allowWatchBookmarks": "true", "resourceVersion": str(self._last)}
        if self._labels:
            query["labelSelector"] = _selector(self._labels)
        try:
            response = self._store.open("GET", KIND_PATHS[self._kind].path(self._namespace), query,
                                        read_timeout=self._store.watch_idle_seconds)
        except _Retryable as err:
            raise Unavailable(str(err)) from None
        with self._lock:
            if self._cancelled.is_set():
                response.release_conn()
                raise StopIteration
            self._response = response
            self._lines = _lines(response)

    def __next__(self) -> WatchEvent:
        while True:
            if self._cancelled.is_set():
                raise StopIteration
            if self._lines is None:
                self._open()
            assert self._lines is not None
            try:
                line = next(self._lines)
            except StopIteration:
                self._close()  # the server ended the watch: open it again from the last version
                continue
            except (urllib3.exceptions.HTTPError, OSError) as err:
                self._close()
                if self._cancelled.is_set():
                    raise StopIteration from None
                if isinstance(err, urllib3.exceptions.ReadTimeoutError):
                    # Silent for watch_idle_seconds (a cluster sends bookmarks about once a
                    # minute): watch again from the last version, and say how far this stream
                    # got, so an informer does not take the silence for a stuck stream.
                    return WatchEvent(EventType.BOOKMARK, None, self._last)
                raise Unavailable(f"watch {self._kind}: {err}") from None
            event = self._event(line)
            if event is not None:
                return event

    def _event(self, line: bytes) -> WatchEvent | None:
        try:
            message = json.loads(line)
        except ValueError:
            raise StoreError(f"watch {self._kind}: not a JSON line: {line[:200]!r}") from None
        type_, obj = message.get("type"), message.get("object") or {}
        if type_ == "ERROR":
            self._close()
            code = int(obj.get("code") or 0)
            raise error_of(code or 500, json.dumps(obj).encode()) if code != 410 else Expired(
                str(obj.get("message") or "resource version too old"))
        version = _version(obj)
        self._last = max(self._last, version)
        if type_ == "BOOKMARK":
            return WatchEvent(EventType.BOOKMARK, None, version)
        if type_ not in ("ADDED", "MODIFIED", "DELETED"):
            return None
        doc = from_kube(self._kind, obj)
        if type_ != "DELETED":
            self._store.release_katib_finalizers(self._kind, obj)
            self._store._seen.saw(doc)
        else:
            self._store._seen.forget(self._kind, doc["metadata"].get("namespace", ""), doc["metadata"]["name"])
        return WatchEvent(EventType(type_), model_from_doc(doc), version)

    def _close(self) -> None:
        with self._lock:
            response, self._response, self._lines = self._response, None, None
        if response is not None:
            _shutdown(response)
            response.release_conn()

    def cancel(self) -> None:
        self._cancelled.set()
        with self._lock:
            response = self._response
        if response is not None:
            _shutdown(response)  # wakes a read blocked in another thread


def _shutdown(response: urllib3.BaseHTTPResponse) -> None:
    """Closes the response's socket under a read blocked on it (urllib3 refuses once the
    connection went back to the pool: then nothing is reading it)."""
    with contextlib.suppress(RuntimeError, ValueError, OSError):
        response.shutdown()


def _lines(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    buffer = b""
    for chunk in response.stream(8192, decode_content=True):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


_END = object()


class _MergedWatch(WatchStream):
    """One watch per kind, merged. ``ordered``: an event is passed on only once every kind's
    watch has got to its version (by an event or a bookmark), so events come in version order,
    as one store-wide watch would send them; bookmarks carry the lowest kind's version."""

    def __init__(self, store: KubernetesResourceStore, kind: str, namespace: str,
                 labels: Mapping[str, str] | None, since: int, *, ordered: bool):
        self._store, self._namespace, self._labels, self._since = store, namespace, labels, since
        self._ordered = ordered
        self._kinds = [kind] if kind else builtins.list(KIND_PATHS)
        self._queue: queue.Queue[tuple[int, WatchEvent | BaseException | object]] = queue.Queue()
        self._streams: builtins.list[_KindWatch] = []
        self._reached: builtins.list[int] = []
        self._pending: builtins.list[WatchEvent] = []
        self._bookmark = 0
        self._cancelled = threading.Event()

    def _start(self) -> None:
        rules.check_scope("", self._namespace)
        rules.check_since(self._since)
        since = self._since or self._store.current_version(self._kinds[0], self._namespace)
        self._reached = [since] * len(self._kinds)
        self._bookmark = since
        for i, kind in enumerate(self._kinds):
            stream = _KindWatch(self._store, kind, self._namespace, self._labels, since)
            self._streams.append(stream)
            threading.Thread(target=self._pump, args=(i, stream), name=f"watch-{kind}", daemon=True).start()

    def _pump(self, index: int, stream: _KindWatch) -> None:
        try:
            for event in stream:
                self._queue.put((index, event))
        except BaseException as err:  # noqa: BLE001 - handed to the reader, which raises it
            self._queue.put((index, err))
        self._queue.put((index, _END))

    def __next__(self) -> WatchEvent:
        if not self._streams and not self._cancelled.is_set():
            self._start()
        while True:
            ready = self._ready()
            if ready is not None:
                return ready
            if self._cancelled.is_set():
                raise StopIteration
            index, item = self._queue.get()
            if isinstance(item, BaseException):
                self.cancel()
                raise item
            if item is _END:
                if self._cancelled.is_set():
                    raise StopIteration
                continue
            assert isinstance(item, WatchEvent)
            self._reached[index] = max(self._reached[index], item.resource_version)
            if item.type != EventType.BOOKMARK:
                if not self._ordered:
                    return item
                self._pending.append(item)

    def _ready(self) -> WatchEvent | None:
        """The oldest pending event once every kind has got past it, else a bookmark when the
        version every kind has reached moved on."""
        if not self._reached:
            return None
        floor = min(self._reached)
        if self._pending:
            self._pending.sort(key=lambda e: e.resource_version)
            if self._pending[0].resource_version <= floor:
                return self._pending.pop(0)
        if floor > self._bookmark and not self._pending:
            self._bookmark = floor
            return WatchEvent(EventType.BOOKMARK, None, floor)
        return None

    def cancel(self) -> None:
        self._cancelled.set()
        for stream in self._streams:
            stream.cancel()
        self._queue.put((-1, _END))
