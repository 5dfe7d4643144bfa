"""OpenAPI v3: an index at ``/openapi/v3`` and one document per group version, with the schemas
of Katib's types generated from Sextant's models (so ``kubectl explain experiment.spec``
works) and, on every PATCH operation, the group-version-kind and the ``fieldValidation`` query
parameter, which is what tells kubectl (>= 1.29) to let the server validate ``apply``,
``create`` and ``edit`` (``fieldValidation=Strict``)."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from aiohttp import web

from services.api_server.errors import ApiError
from services.api_server.kinds import GROUP_VERSIONS, Kind, kinds_of
from sextant.resources.models import RESOURCE_MODELS

PREFIX = "io.sextant"
_QUERY = ("dryRun", "fieldManager", "fieldValidation", "pretty")


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _simplify(node: Any) -> Any:
    """Plain OpenAPI for kubectl: ``anyOf [X, null]`` becomes X, titles go."""
    if isinstance(node, list):
        return [_simplify(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _simplify(v) for k, v in node.items() if k != "title"}
    options = node.get("anyOf")
    if isinstance(options, list):
        rest = [o for o in options if o != {"type": "null"}]
        if len(rest) == 1:
            merged = {**{k: v for k, v in node.items() if k != "anyOf"}, **rest[0]}
            merged.pop("default", None) if merged.get("default") is None else None
            return merged
    if "$ref" in node and len(node) > 1:  # OpenAPI 3.0 ignores siblings of $ref: keep them via allOf
        ref = node.pop("$ref")
        node["allOf"] = [{"$ref": ref}]
    return node


@functools.cache
def _katib_schemas(version: str) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for kind in ("Experiment", "Trial", "Suggestion"):
        schema = RESOURCE_MODELS[kind].model_json_schema(
            by_alias=True, ref_template=f"#/components/schemas/{PREFIX}.{version}.{{model}}")
        for name, sub in schema.pop("$defs", {}).items():
            schemas[f"{PREFIX}.{version}.{name}"] = _simplify(sub)
        root = _simplify(schema)
        root["x-kubernetes-group-version-kind"] = [{"group": "kubeflow.org", "version": version, "kind": kind}]
        root.setdefault("description", f"A Katib {kind}.")
        props = root.setdefault("properties", {})
        props.get("status", {}).pop("default", None)
        schemas[f"{PREFIX}.{version}.{kind}"] = root
        schemas[f"{PREFIX}.{version}.{kind}List"] = {
            "type": "object", "description": f"A list of {kind}s.",
            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                           "metadata": {"type": "object"},
                           "items": {"type": "array",
                                     "items": {"$ref": f"#/components/schemas/{PREFIX}.{version}.{kind}"}}},
            "x-kubernetes-group-version-kind": [{"group": "kubeflow.org", "version": version, "kind": f"{kind}List"}]}
    return schemas


def _loose(kind: Kind) -> dict[str, Any]:
    return {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
            "description": f"A core/v1 {kind.kind} as Sextant serves it.",
            "x-kubernetes-group-version-kind": [{"group": "", "version": kind.version, "kind": kind.kind}]}


def _schema_name(kind: Kind) -> str:
    return f"{PREFIX}.{kind.version}.{kind.kind}"


def _params(names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"name": n, "in": "query", "schema": {"type": "string"}, "uniqueItems": True} for n in names]


def _operation(kind: Kind, action: str, op_id: str, *, body: bool = False, query: tuple[str, ...] = ()) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{_schema_name(kind)}"}
    op: dict[str, Any] = {
        "operationId": op_id, "tags": [kind.group_version],
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": kind.group, "version": kind.version, "kind": kind.kind},
        "parameters": _params(query),
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}},
                      "401": {"description": "Unauthorized"}},
    }
    if body:
        media = ("application/json-patch+json", "application/merge-patch+json") if action == "patch" \
            else ("application/json", "application/yaml")
        op["requestBody"] = {"required": True, "content": {m: {"schema": ref if action != "patch"
                                                                  else {"type": "object"}} for m in media}}
    return op


def _paths(kind: Kind) -> dict[str, Any]:
    base = f"/{_gv_path(kind.group, kind.version)}"
    collection = f"{base}/namespaces/{{namespace}}/{kind.plural}" if kind.namespaced else f"{base}/{kind.plural}"
    item = f"{collection}/{{name}}"
    path_params = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    if kind.namespaced:
        path_params.append({"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}})
    name = kind.kind
    coll: dict[str, Any] = {"parameters": path_params[1:]}
    entry: dict[str, Any] = {"parameters": path_params}
    if "list" in kind.verbs:
        coll["get"] = _operation(kind, "list", f"list{name}",
                                 query=("labelSelector", "fieldSelector", "limit", "continue", "watch",
                                        "resourceVersion", "allowWatchBookmarks", "timeoutSeconds"))
    if "create" in kind.verbs:
        coll["post"] = _operation(kind, "post", f"create{name}", body=True, query=_QUERY)
    if "get" in kind.verbs:
        entry["get"] = _operation(kind, "get", f"read{name}")
    if "update" in kind.verbs:
        entry["put"] = _operation(kind, "put", f"replace{name}", body=True, query=_QUERY)
    if "patch" in kind.verbs:
        entry["patch"] = _operation(kind, "patch", f"patch{name}", body=True, query=(*_QUERY, "force"))
    if "delete" in kind.verbs:
        entry["delete"] = _operation(kind, "delete", f"delete{name}",
                                     query=("propagationPolicy", "gracePeriodSeconds", "dryRun"))
    paths = {collection: coll, item: entry}
    if "status" in kind.subresources:
        paths[f"{item}/status"] = {"parameters": path_params,
                                   "get": _operation(kind, "get", f"read{name}Status"),
                                   "put": _operation(kind, "put", f"replace{name}Status", body=True, query=_QUERY),
                                   "patch": _operation(kind, "patch", f"patch{name}Status", body=True,
                                                       query=(*_QUERY, "force"))}
    return paths


@functools.cache
def document(group: str, version: str) -> bytes:
    kinds = kinds_of(group, version)
    schemas = dict(_katib_schemas(version)) if group else {}
    paths: dict[str, Any] = {}
    for kind in kinds:
        if not group:
            schemas[_schema_name(kind)] = _loose(kind)
        paths.update(_paths(kind))
    doc = {"openapi": "3.0.0", "info": {"title": "Sextant", "version": version}, "paths": paths,
           "components": {"schemas": schemas}}
    return json.dumps(doc).encode()


def _hash(group: str, version: str) -> str:
    return hashlib.sha512(document(group, version)).hexdigest()[:64].upper()


async def index(request: web.Request) -> web.Response:
    paths = {}
    for group, versions in GROUP_VERSIONS.items():
        for version in versions:
            path = _gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={_hash(group, version)}"}
    return web.json_response({"paths": paths})


async def group_version(request: web.Request) -> web.Response:
    tail = request.match_info["tail"]
    parts = tail.split("/")
    if len(parts) == 3 and parts[0] == "apis":
        group, version = parts[1], parts[2]
    elif len(parts) == 2 and parts[0] == "api":
        group, version = "", parts[1]
    else:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    if version not in GROUP_VERSIONS.get(group, ()):
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return web.Response(body=document(group, version), headers={
        "Content-Type": "application/json", "Cache-Control": "public, immutable" if "hash" in request.query
        else "no-cache, private", "Etag": f'"{_hash(group, version)}"'})
