"""API discovery: ``/api``, ``/apis``, the group and group-version documents, and aggregated
discovery (``apidiscovery.k8s.io`` v2 and v2beta1) when the client asks for it in ``Accept``.
kubectl needs these before any other request, and caches them in ``~/.kube/cache``."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from services.api_server import media
from services.api_server.kinds import GROUP_VERSIONS, Kind, kinds_of


def _resource(k: Kind) -> dict[str, Any]:
    out: dict[str, Any] = {"name": k.plural, "singularName": k.singular, "namespaced": k.namespaced,
                           "kind": k.kind, "verbs": list(k.verbs)}
    if k.categories:
        out["categories"] = list(k.categories)
    if k.short_names:
        out["shortNames"] = list(k.short_names)
    return out


def resource_list(group: str, version: str) -> dict[str, Any]:
    resources = []
    for k in kinds_of(group, version):
        resources.append(_resource(k))
        for sub in k.subresources:
            resources.append({"name": f"{k.plural}/{sub}", "singularName": "", "namespaced": k.namespaced,
                              "kind": k.kind, "verbs": list(k.subresource_verbs(sub))})
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def _group(name: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in GROUP_VERSIONS[name]]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def _aggregated_group(group: str, discovery_version: str) -> dict[str, Any]:
    versions = []
    for version in GROUP_VERSIONS[group]:
        resources = []
        for k in kinds_of(group, version):
            gvk = {"group": group, "version": version, "kind": k.kind}
            entry: dict[str, Any] = {"resource": k.plural, "responseKind": gvk,
                                     "scope": "Namespaced" if k.namespaced else "Cluster",
                                     "singularResource": k.singular, "verbs": list(k.verbs)}
            if k.categories:
                entry["categories"] = list(k.categories)
            if k.short_names:
                entry["shortNames"] = list(k.short_names)
            if k.subresources:
                entry["subresources"] = [
                    {"subresource": sub, "verbs": list(k.subresource_verbs(sub)),
                     "responseKind": gvk if sub == "status" else {"group": "", "version": "", "kind": ""}}
                    for sub in k.subresources]
            resources.append(entry)
        versions.append({"version": version, "resources": resources, "freshness": "Current"})
    return {"metadata": {"name": group} if group else {}, "versions": versions}


def _aggregated(groups: list[str], discovery_version: str) -> web.Response:
    body = {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{discovery_version}",
            "metadata": {}, "items": [_aggregated_group(g, discovery_version) for g in groups]}
    content_type = f"application/json;g=apidiscovery.k8s.io;v={discovery_version};as=APIGroupDiscoveryList"
    return web.Response(body=json.dumps(body).encode(), headers={"Content-Type": content_type})


def _json(body: dict[str, Any]) -> web.Response:
    return web.json_response(body)


async def api(request: web.Request) -> web.Response:
    version = media.discovery_version(request.headers.get("Accept"))
    if version:
        return _aggregated([""], version)
    host = request.host or "127.0.0.1"
    return _json({"kind": "APIVersions", "versions": ["v1"],
                  "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]})


async def apis(request: web.Request) -> web.Response:
    named = [g for g in GROUP_VERSIONS if g]
    version = media.discovery_version(request.headers.get("Accept"))
    if version:
        return _aggregated(named, version)
    return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(g) for g in named]})


async def core_v1(request: web.Request) -> web.Response:
    return _json(resource_list("", "v1"))


async def group(request: web.Request) -> web.Response:
    name = request.match_info["group"]
    if name not in GROUP_VERSIONS or not name:
        raise web.HTTPNotFound()
    return _json({"kind": "APIGroup", "apiVersion": "v1", **_group(name)})


async def group_version(request: web.Request) -> web.Response:
    name, version = request.match_info["group"], request.match_info["version"]
    if version not in GROUP_VERSIONS.get(name, ()) or not name:
        raise web.HTTPNotFound()
    return _json(resource_list(name, version))
