"""Katib's resources (and Events) on the resource store, with the Kubernetes API's verbs:
get, list (selectors, ``limit`` + ``continue``), create, update, patch, delete, watch, and the
``status`` subresource. The store does the storing, defaulting, validation, version checks and
cascading deletes; this module speaks HTTP and Kubernetes' shapes around it."""

from __future__ import annotations

import asyncio
import copy
import json
import secrets
from collections.abc import Callable
from typing import Any

from aiohttp import web

from services.api_server import convert, media, protobuf, tables
from services.api_server.errors import (
    ApiError,
    bad_request,
    expired,
    from_store,
    invalid,
    method_not_allowed,
    not_found,
)
from services.api_server.kinds import EVENT, Kind
from services.api_server.paging import ListPages, decode_continue, encode_continue
from services.api_server.patch import apply_patch
from services.api_server.selectors import COMMON_FIELDS, EVENT_FIELDS, Selector, equality_pairs, selector
from services.api_server.watch import Change, WatchHub
from sextant.resources.admission import admit_experiment
from sextant.resources.core_events import core_event, store_event
from sextant.resources.models import to_doc
from sextant.store.codec import model_from_doc
from sextant.store.interface import Expired, Invalid, StoreError

Doc = dict[str, Any]
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_OMIT_EMPTY = ("labels", "annotations", "ownerReferences", "finalizers")
READ_ONLY_META = ("uid", "creationTimestamp", "generation", "selfLink", "managedFields", "deletionTimestamp")


# ---------------------------------------------------------------------------------------------
# Shapes


def present(kind: Kind, doc: Doc) -> Doc:
    """A stored document as this kind and version show it. Empty metadata maps and lists are
    left out, as Kubernetes does (some clients cannot read an empty one)."""
    if kind is EVENT:
        return core_event(doc)
    meta = doc.get("metadata")
    if isinstance(meta, dict) and any(meta.get(k) in ({}, []) for k in _OMIT_EMPTY):
        doc = {**doc, "metadata": {k: v for k, v in meta.items() if not (k in _OMIT_EMPTY and v in ({}, []))}}
    return convert.for_version(doc, kind.version)


def _mapping(value: Any) -> Doc:
    return value if isinstance(value, dict) else {}


def _list_kind(kind: Kind) -> str:
    return f"{kind.kind}List"


# ---------------------------------------------------------------------------------------------
# Request plumbing


async def call(request: web.Request, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Runs a (blocking) store call on the server's thread pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(request.app["sextant.executor"], lambda: fn(*args, **kwargs))


def store(request: web.Request) -> Any:
    return request.app["sextant.store"]


def _error(kind: Kind, name: str, err: StoreError, doc: Doc | None = None) -> ApiError:
    api_err = from_store(err, kind=kind.kind, group=kind.group, plural=kind.plural, name=name)
    if isinstance(err, Invalid) and doc is not None:
        api_err = invalid(kind.kind, kind.group, kind.plural, name, [_with_value(e, doc) for e in err.errors])
    return api_err


def _lookup(doc: Any, path: str) -> tuple[bool, Any]:
    value = doc
    for part in path.replace("]", "").replace("[", ".").split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def _with_value(error: str, doc: Doc) -> str:
    """``field: rule`` → ``field: Invalid value: <value>: rule`` when the field holds a scalar,
    the way Kubernetes words field errors (kubectl prints the message as it is)."""
    field, sep, rule = error.partition(": ")
    if not sep or " " in field:
        return error
    found, value = _lookup(doc, field)
    if not found or isinstance(value, dict | list):
        return error
    return f"{field}: Invalid value: {json.dumps(value)}: {rule}"


async def read_json(request: web.Request) -> Doc:
    content_type = (request.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
    body = await request.read()
    if content_type in ("application/yaml", "application/x-yaml"):
        import yaml

        try:
            doc = yaml.safe_load(body)
        except yaml.YAMLError as err:
            raise bad_request(f"error decoding YAML: {err}") from None
    elif content_type == protobuf.MEDIA_TYPE:
        doc = protobuf.decode_object(body)
    elif content_type in ("application/json", "", "*/*", "text/plain"):
        try:
            doc = json.loads(body or b"null")
        except ValueError as err:
            raise bad_request(f"error decoding JSON: {err}") from None
    else:
        from services.api_server.errors import unsupported_media_type

        raise unsupported_media_type(content_type)
    if not isinstance(doc, dict):
        raise bad_request("the request body must be a JSON object")
    return doc


def json_response(body: Doc, status: int = 200, content_type: str = "application/json") -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), headers={"Content-Type": content_type})


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


# ---------------------------------------------------------------------------------------------
# Reading


def _selector(kind: Kind, request: web.Request) -> Selector:
    getters = EVENT_FIELDS if kind is EVENT else COMMON_FIELDS
    return selector(request.query.get("labelSelector"), request.query.get("fieldSelector"), getters)


async def list_docs(request: web.Request, kind: Kind, namespace: str) -> tuple[list[Doc], int]:
    """The kind's documents in ``namespace`` ("" = all) that match the request's selectors,
    sorted by namespace and name, in the request version's shape."""
    sel = _selector(kind, request)
    try:
        raw, version = await call(request, store(request).list_documents, kind.store_kind, namespace,
                                  equality_pairs(sel.labels))
    except StoreError as err:
        raise _error(kind, "", err) from None
    docs = [present(kind, d) for d in raw]
    if sel.labels or sel.fields:
        docs = [d for d in docs if sel.matches(d)]
    docs.sort(key=lambda d: (d["metadata"].get("namespace", ""), d["metadata"].get("name", "")))
    return docs, version


async def list_(request: web.Request, kind: Kind, namespace: str) -> web.StreamResponse:
    if _flag(request, "watch"):
        return await watch(request, kind, namespace)
    token = request.query.get("continue")
    pages: ListPages = request.app["sextant.list_pages"]
    remembered = pages.take(token, kind, namespace, request) if token else None
    if remembered is not None:
        docs, version = remembered
    else:
        docs, version = await list_docs(request, kind, namespace)
    if token and remembered is None:
        _, after_ns, after_name = decode_continue(token)
        docs = [d for d in docs if (d["metadata"].get("namespace", ""), d["metadata"]["name"]) > (after_ns, after_name)]
    next_token = ""
    limit = request.query.get("limit")
    if limit:
        try:
            n = int(limit)
        except ValueError:
            raise bad_request(f"limit: must be an integer, got {limit!r}") from None
        if 0 < n < len(docs):
            last = docs[n - 1]["metadata"]
            next_token = encode_continue(version, last.get("namespace", ""), last["name"])
            pages.keep(next_token, kind, namespace, request, docs[n:], version)
            docs = docs[:n]
    table_version = media.table_version(request.headers.get("Accept"))
    if table_version:
        body = tables.table(kind.kind, docs, table_version=table_version, resource_version=str(version),
                            continue_token=next_token, include_object=request.query.get("includeObject", "Metadata"))
        return json_response(body, content_type=f"application/json;as=Table;v={table_version};g=meta.k8s.io")
    metadata: Doc = {"resourceVersion": str(version)}
    if next_token:
        metadata["continue"] = next_token
    return json_response({"kind": _list_kind(kind), "apiVersion": kind.group_version, "metadata": metadata,
                          "items": docs})


async def get_doc(request: web.Request, kind: Kind, namespace: str, name: str) -> Doc:
    """The stored document (v1beta1 shape)."""
    try:
        model = await call(request, store(request).get, kind.store_kind, namespace, name)
    except StoreError as err:
        raise _error(kind, name, err) from None
    return to_doc(model)


def _one(request: web.Request, kind: Kind, doc: Doc, status: int = 200) -> web.Response:
    hub: WatchHub | None = request.app.get("sextant.watch_hub")
    if hub is not None:
        hub.handed_out(int(doc["metadata"].get("resourceVersion") or 0))
    shown = present(kind, doc)
    table_version = media.table_version(request.headers.get("Accept"))
    if table_version:
        body = tables.table(kind.kind, [shown], table_version=table_version,
                            resource_version=shown["metadata"].get("resourceVersion", ""),
                            include_object=request.query.get("includeObject", "Metadata"))
        return json_response(body, status, f"application/json;as=Table;v={table_version};g=meta.k8s.io")
    return json_response(shown, status)


async def get(request: web.Request, kind: Kind, namespace: str, name: str) -> web.Response:
    return _one(request, kind, await get_doc(request, kind, namespace, name))


# ---------------------------------------------------------------------------------------------
# Watching


def _watch_line(kind: Kind, request: web.Request, change: Change, table_version: str | None) -> bytes:
    key = (kind.version, kind.kind, table_version, request.query.get("includeObject"))
    line = change.encoded.get(key)
    if line is None:
        line = change.encoded[key] = _encode_watch_line(kind, request, change, table_version)
    return line


def _encode_watch_line(kind: Kind, request: web.Request, change: Change, table_version: str | None) -> bytes:
    if change.type == "BOOKMARK":
        obj: Doc = {"kind": kind.kind, "apiVersion": kind.group_version,
                    "metadata": {"resourceVersion": str(change.version)}}
    else:
        assert change.doc is not None
        obj = present(kind, change.doc)
        if table_version:
            obj = tables.table(kind.kind, [obj], table_version=table_version,
                               resource_version=str(change.version),
                               include_object=request.query.get("includeObject", "Metadata"))
    return json.dumps({"type": change.type, "object": obj}).encode() + b"\n"


async def watch(request: web.Request, kind: Kind, namespace: str) -> web.StreamResponse:
    if "watch" not in kind.verbs:
        raise method_not_allowed()
    sel = _selector(kind, request)
    bookmarks = _flag(request, "allowWatchBookmarks")
    table_version = media.table_version(request.headers.get("Accept"))
    timeout = request.query.get("timeoutSeconds")
    rv_text = request.query.get("resourceVersion", "")
    hub: WatchHub = request.app["sextant.watch_hub"]
    initial: list[Doc] = []
    # Streaming lists (client-go's WatchListClient): the current state as ADDED events, then a
    # bookmark marking their end, then changes. No version at all: the same without the marker.
    send_initial = _flag(request, "sendInitialEvents")
    if send_initial or rv_text in ("", "0"):
        initial, since = await list_docs(request, kind, namespace)
    else:
        try:
            since = int(rv_text)
        except ValueError:
            raise bad_request(f"resourceVersion: {rv_text!r} is not a valid resource version") from None
    response = web.StreamResponse(status=200, headers={
        "Content-Type": (f"application/json;as=Table;v={table_version};g=meta.k8s.io" if table_version
                         else "application/json"),
        "Cache-Control": "no-cache, private"})
    response.enable_chunked_encoding()
    await response.prepare(request)

    def wanted(doc: Doc | None) -> bool:
        if doc is None or doc.get("kind") != kind.store_kind:
            return False
        meta = doc.get("metadata") or {}
        if namespace and meta.get("namespace") != namespace:
            return False
        if not sel.labels and not sel.fields:
            return True
        return sel.matches(present(kind, doc) if kind is EVENT else doc)

    try:
        for doc in initial:
            await response.write(_watch_line(kind, request, Change("ADDED", 0, doc), table_version))
        if send_initial:
            end = {"kind": kind.kind, "apiVersion": kind.group_version,
                   "metadata": {"resourceVersion": str(since),
                                "annotations": {"k8s.io/initial-events-end": "true"}}}
            await response.write(json.dumps({"type": "BOOKMARK", "object": end}).encode() + b"\n")
        batch: list[bytes] = []  # lines already waiting go out in one write
        async for change, more in hub.follow(since, float(timeout) if timeout else None):
            if change.type == "BOOKMARK":
                if bookmarks:
                    batch.append(_watch_line(kind, request, change, table_version))
            elif wanted(change.doc):
                batch.append(_watch_line(kind, request, change, table_version))
            if batch and (not more or len(batch) >= 100):
                await response.write(b"".join(batch))
                batch = []
        if batch:
            await response.write(b"".join(batch))
    except Expired as err:
        status = expired(f"too old resource version: {since} ({hub.version}): {err}").status()
        await response.write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    await response.write_eof()
    return response


# ---------------------------------------------------------------------------------------------
# Writing


def _check_identity(kind: Kind, doc: Doc, namespace: str, name: str | None) -> Doc:
    """Fills and checks kind, apiVersion, namespace and name against the URL."""
    if doc.get("kind") not in (None, "", kind.kind):
        raise bad_request(f"the kind of the object ({doc.get('kind')}) does not match the URL ({kind.kind})")
    if doc.get("apiVersion") not in (None, "", kind.group_version):
        raise bad_request(f"the API version in the data ({doc.get('apiVersion')}) does not match the expected "
                          f"API version ({kind.group_version})")
    doc = copy.deepcopy(doc)
    doc["kind"], doc["apiVersion"] = kind.kind, kind.group_version
    meta = doc.get("metadata")
    if meta is None:
        meta = doc["metadata"] = {}
    if not isinstance(meta, dict):
        raise bad_request("metadata: must be an object")
    if meta.get("namespace") not in (None, "", namespace):
        raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
    meta["namespace"] = namespace
    if name is not None:
        if meta.get("name") not in (None, "", name):
            raise bad_request("the name of the object does not match the name on the URL")
        meta["name"] = name
    return doc


def _admitted(kind: Kind, doc: Doc, request: web.Request, old: Any = None) -> Any:
    """The store model of a document: Experiments are defaulted and validated here (so every
    error names its field before anything is stored), other kinds checked against their model."""
    v1beta1 = convert.to_v1beta1(doc)
    if kind.kind == "Experiment":
        return admit_experiment(v1beta1, old=old, registry=request.app["sextant.registry"])
    return model_from_doc(v1beta1)


async def create(request: web.Request, kind: Kind, namespace: str) -> web.Response:
    if "create" not in kind.verbs:
        raise method_not_allowed()
    doc = _check_identity(kind, await read_json(request), namespace, None)
    if kind is EVENT:  # written in core/v1's shape, stored in Sextant's
        doc = {**store_event(doc), "metadata": doc["metadata"]}
    meta = doc["metadata"]
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = str(meta["generateName"]) + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
    name = str(meta.get("name") or "")
    if not name:
        raise invalid(kind.kind, kind.group, kind.plural, "", ["metadata.name: name or generateName is required"])
    for key in (*READ_ONLY_META, "resourceVersion"):
        meta.pop(key, None)
    doc.pop("status", None)  # the status subresource: a create never sets it
    dry_run = request.query.get("dryRun") == "All"
    try:
        model = _admitted(kind, doc, request)
        created = await call(request, store(request).create, model, dry_run=dry_run)
    except StoreError as err:
        raise _error(kind, name, err, doc) from None
    if not dry_run:
        request.app["sextant.namespaces"].touch(namespace)
    return _one(request, kind, to_doc(created), status=201)


async def _write(request: web.Request, kind: Kind, namespace: str, name: str, doc: Doc, *,
                 status_only: bool, old: Doc) -> web.Response:
    doc = _check_identity(kind, doc, namespace, name)
    meta = doc["metadata"]
    for key in READ_ONLY_META:  # the stored values stand, whatever the body says
        if key in old.get("metadata", {}):
            meta[key] = old["metadata"][key]
    doc_v1 = convert.to_v1beta1(doc)
    try:
        if status_only:
            written = await call(request, store(request).update_status,
                                 model_from_doc({**old, "metadata": {**old["metadata"], **{
                                     "resourceVersion": meta.get("resourceVersion", "")}},
                                     "status": doc_v1.get("status") or {}}))
        else:
            model = _admitted(kind, doc_v1, request, old=model_from_doc(old) if kind.kind == "Experiment" else None)
            if request.query.get("dryRun") == "All":
                return _one(request, kind, to_doc(model))
            written = await call(request, store(request).update, model)
    except StoreError as err:
        raise _error(kind, name, err, doc) from None
    return _one(request, kind, to_doc(written))


async def update(request: web.Request, kind: Kind, namespace: str, name: str, *, status_only: bool = False) \
        -> web.Response:
    if "update" not in kind.verbs:
        raise method_not_allowed()
    doc = await read_json(request)
    if not str((doc.get("metadata") or {}).get("resourceVersion") or ""):
        raise invalid(kind.kind, kind.group, kind.plural, name,
                      ["metadata.resourceVersion: must be specified for an update"])
    old = await get_doc(request, kind, namespace, name)
    if kind.version == "v1alpha3":
        doc = convert.to_v1beta1(doc)
    return await _write(request, kind, namespace, name, doc, status_only=status_only, old=old)


async def patch(request: web.Request, kind: Kind, namespace: str, name: str, *, status_only: bool = False) \
        -> web.Response:
    if "patch" not in kind.verbs:
        raise method_not_allowed()
    body = await request.read()
    content_type = request.headers.get("Content-Type", "")
    attempts = 5
    for attempt in range(attempts):
        old = await get_doc(request, kind, namespace, name)
        current = present(kind, old)
        patched = apply_patch(current, content_type, body)
        meta = _mapping(patched.get("metadata"))
        # A resourceVersion the patch sets is a precondition (as in Kubernetes); without one the
        # patch applies to whatever is stored, re-read and re-applied if a writer got in between.
        pinned = str(meta.get("resourceVersion") or "") != str(current["metadata"].get("resourceVersion"))
        try:
            return await _write(request, kind, namespace, name, patched, status_only=status_only, old=old)
        except ApiError as err:
            if err.reason != "Conflict" or pinned or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


async def delete(request: web.Request, kind: Kind, namespace: str, name: str) -> web.Response:
    if "delete" not in kind.verbs:
        raise method_not_allowed()
    options: Doc = {}
    body = await request.read()
    if body.strip():
        try:
            options = json.loads(body)
        except ValueError as err:
            raise bad_request(f"error decoding DeleteOptions: {err}") from None
    policy = request.query.get("propagationPolicy") or options.get("propagationPolicy") or "Background"
    if policy not in ("Background", "Foreground", "Orphan"):
        raise bad_request(f"propagationPolicy: unsupported value {policy!r}: supported values are "
                          "Background, Foreground, Orphan")
    if policy == "Orphan":
        raise invalid(kind.kind, kind.group, kind.plural, name,
                      ["propagationPolicy: Orphan is not supported: the Trials and Suggestion of an Experiment "
                       "are always deleted with it"])
    expected = ((options.get("preconditions") or {}).get("resourceVersion")) or 0
    if request.query.get("dryRun") == "All" or options.get("dryRun") == ["All"]:
        return _one(request, kind, await get_doc(request, kind, namespace, name))
    try:
        deleted = await call(request, store(request).delete, kind.store_kind, namespace, name,
                             resource_version=int(expected))
    except StoreError as err:
        raise _error(kind, name, err) from None
    if not deleted:
        raise not_found(kind.plural, kind.group, name)
    return _one(request, kind, to_doc(deleted[0]))


async def delete_collection(request: web.Request, kind: Kind, namespace: str) -> web.Response:
    if "deletecollection" not in kind.verbs:
        raise method_not_allowed()
    docs, _ = await list_docs(request, kind, namespace)
    gone = []
    for doc in docs:
        meta = doc["metadata"]
        try:
            deleted = await call(request, store(request).delete, kind.store_kind, meta["namespace"], meta["name"])
        except StoreError:
            continue  # already gone (with its owner)
        if deleted:
            gone.append(present(kind, to_doc(deleted[0])))
    return json_response({"kind": _list_kind(kind), "apiVersion": kind.group_version, "metadata": {},
                          "items": gone})
