"""The API server's aiohttp application: routes, the error and auth middlewares, and the state
the handlers (and the web UI, mounted at ``/`` when ``services.web_ui`` is installed) share.

Application keys: ``sextant.store`` (the ResourceStore), ``sextant.token``, ``sextant.data_dir``
(Path or None), ``sextant.public_prefixes`` (paths served without a token; the UI adds its own),
``sextant.executor`` (threads for blocking store calls), ``sextant.watch_hub``,
``sextant.namespaces``, ``sextant.registry``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web
from prometheus_client import Counter, Histogram

from services.api_server import discovery, media, namespaces, openapi, paging, pods, resources, tables
from services.api_server.auth import auth_middleware
from services.api_server.errors import ApiError, method_not_allowed
from services.api_server.kinds import NAMESPACE, POD, Kind, lookup
from services.api_server.watch import WatchHub
from sextant.algorithm_registry import Registry
from sextant.store.interface import ResourceStore

log = logging.getLogger("sextant.api_server")

# The DB manager's channel, for what the resource store does not hold (the web UI reads trials'
# observation logs through it); absent when the store is not the DB manager's.
DB_MANAGER: web.AppKey[grpc.Channel] = web.AppKey("sextant.db_manager", grpc.Channel)

REQUESTS = Counter("sextant_api_requests_total", "Kubernetes API requests", ["verb", "resource", "code"])
LATENCY = Histogram("sextant_api_request_seconds", "Kubernetes API request latency (watches: until the first byte)",
                    ["verb", "resource"])
KUBERNETES_VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.0-sextant", "gitCommit": "",
                      "gitTreeState": "clean", "buildDate": "", "goVersion": "", "compiler": "python",
                      "platform": "linux/amd64"}
NOT_FOUND = "the server could not find the requested resource"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _verb(request: web.Request, has_name: bool) -> str:
    method = request.method
    if method == "GET":
        if request.query.get("watch", "").lower() in ("true", "1"):
            return "watch"
        return "get" if has_name else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete" if has_name else "deletecollection"}.get(method, method.lower())


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a Kubernetes Status; requests are counted by verb and resource."""
    started = time.perf_counter()
    resource = request.match_info.get("plural", "")
    # Paths that are not resources (discovery, health) count as "get".
    verb = _verb(request, "name" in request.match_info or not resource)
    try:
        response = await handler(request)
    except ApiError as err:
        response = err.response()
    except web.HTTPNotFound:
        response = ApiError(404, "NotFound", NOT_FOUND, {}).response()
    except web.HTTPMethodNotAllowed:
        response = method_not_allowed().response()
    except web.HTTPException:
        raise
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as err:  # noqa: BLE001 - the client gets a Status, the log the traceback
        log.exception("request failed", extra={"path": request.path, "method": request.method})
        response = ApiError(500, "InternalError", f"Internal error occurred: {err}").response()
    REQUESTS.labels(verb, resource, str(response.status)).inc()
    LATENCY.labels(verb, resource).observe(time.perf_counter() - started)
    return response


def _kind(request: web.Request) -> Kind:
    info = request.match_info
    group = info.get("group", "")
    kind = lookup(group, info["version"], info["plural"])
    if kind is None:
        raise ApiError(404, "NotFound", NOT_FOUND, {})
    return kind


async def collection(request: web.Request) -> web.StreamResponse:
    """``…/namespaces/{namespace}/{plural}`` and the all-namespaces ``…/{plural}``."""
    kind = _kind(request)
    namespace = request.match_info.get("namespace", "")
    if kind is NAMESPACE:
        return await namespace_collection(request)
    if kind is POD:
        if request.method != "GET" or request.query.get("watch"):
            raise method_not_allowed()
        docs, version = await pods.list_docs(request, namespace)
        return _list_or_table(request, kind, docs, str(version))
    if request.method == "GET":
        return await resources.list_(request, kind, namespace)
    if not namespace and kind.namespaced:
        raise method_not_allowed()
    if request.method == "POST":
        return await resources.create(request, kind, namespace)
    if request.method == "DELETE":
        return await resources.delete_collection(request, kind, namespace)
    raise method_not_allowed()


async def item(request: web.Request) -> web.StreamResponse:
    kind = _kind(request)
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    sub = request.match_info.get("sub", "")
    if sub and sub not in kind.subresources:
        raise ApiError(404, "NotFound", NOT_FOUND, {})
    if kind is POD:
        if request.method != "GET":
            raise method_not_allowed()
        if sub == "log":
            return await pods.log(request, namespace, name)
        return _one(request, kind, await pods.get(request, namespace, name))
    if kind is NAMESPACE or not kind.store_kind:
        raise ApiError(404, "NotFound", NOT_FOUND, {})
    if request.method == "GET":
        return await resources.get(request, kind, namespace, name)
    if request.method == "PUT":
        return await resources.update(request, kind, namespace, name, status_only=sub == "status")
    if request.method == "PATCH":
        return await resources.patch(request, kind, namespace, name, status_only=sub == "status")
    if request.method == "DELETE" and not sub:
        return await resources.delete(request, kind, namespace, name)
    raise method_not_allowed()


def _one(request: web.Request, kind: Kind, doc: dict[str, Any]) -> web.Response:
    table_version = media.table_version(request.headers.get("Accept"))
    if table_version:
        body = tables.table(kind.kind, [doc], table_version=table_version)
        return resources.json_response(body, content_type=f"application/json;as=Table;v={table_version};g=meta.k8s.io")
    return resources.json_response(doc)


def _list_or_table(request: web.Request, kind: Kind, docs: list[dict[str, Any]], version: str) -> web.Response:
    table_version = media.table_version(request.headers.get("Accept"))
    if table_version:
        body = tables.table(kind.kind, docs, table_version=table_version, resource_version=version)
        return resources.json_response(body, content_type=f"application/json;as=Table;v={table_version};g=meta.k8s.io")
    return resources.json_response({"kind": f"{kind.kind}List", "apiVersion": "v1",
                                    "metadata": {"resourceVersion": version}, "items": docs})


async def namespace_collection(request: web.Request) -> web.StreamResponse:
    if request.method == "GET":
        docs = await namespaces.list_docs(request)
        return _list_or_table(request, NAMESPACE, docs, "1")
    if request.method == "POST":
        created = await namespaces.create(request, await resources.read_json(request))
        return resources.json_response(created, status=201)
    raise method_not_allowed()


async def namespace_item(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if request.method == "GET":
        return _one(request, NAMESPACE, await namespaces.get(request, name))
    if request.method == "PATCH":
        return resources.json_response(await namespaces.patch(request, name))
    raise method_not_allowed()


async def version(request: web.Request) -> web.Response:
    return web.json_response(KUBERNETES_VERSION)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    hub: WatchHub | None = request.app.get("sextant.watch_hub")
    if hub is None or not hub.wait_ready(0):
        return web.Response(status=503, text="[-]store-watch not ready\nreadyz check failed")
    return web.Response(text="ok")


async def not_served(request: web.Request) -> web.Response:
    raise ApiError(404, "NotFound", NOT_FOUND, {})


def _routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/healthz", healthz)
    r.add_get("/livez", healthz)
    r.add_get("/readyz", readyz)
    r.add_get("/version", version)
    r.add_get("/api", discovery.api)
    r.add_get("/apis", discovery.apis)
    r.add_get("/api/v1", discovery.core_v1)
    r.add_get("/apis/{group}", discovery.group)
    r.add_get("/apis/{group}/{version}", discovery.group_version)
    r.add_get("/openapi/v3", openapi.index)
    r.add_get("/openapi/v3/{tail:.+}", openapi.group_version)
    core = "/api/{version:v1}"
    named = "/apis/{group}/{version}"
    r.add_route("*", f"{core}/namespaces", namespace_collection)
    r.add_route("*", f"{core}/namespaces/{{name}}", namespace_item)
    for prefix in (core, named):
        r.add_route("*", f"{prefix}/{{plural}}", collection)
        r.add_route("*", f"{prefix}/namespaces/{{namespace}}/{{plural}}", collection)
        r.add_route("*", f"{prefix}/namespaces/{{namespace}}/{{plural}}/{{name}}", item)
        r.add_route("*", f"{prefix}/namespaces/{{namespace}}/{{plural}}/{{name}}/{{sub}}", item)
    r.add_route("*", "/api/{tail:.*}", not_served)
    r.add_route("*", "/apis/{tail:.*}", not_served)
    r.add_route("*", "/openapi/{tail:.*}", not_served)


async def _start_hub(app: web.Application) -> None:
    hub = WatchHub(app["sextant.store"], asyncio.get_running_loop())
    with _string_keys():
        app["sextant.watch_hub"] = hub
    hub.start()


async def _end_watches(app: web.Application) -> None:
    hub: WatchHub = app["sextant.watch_hub"]
    hub.end_all()  # open watches end cleanly, so clients re-watch from their last version
    await asyncio.sleep(0.05)


async def _stop(app: web.Application) -> None:
    app["sextant.watch_hub"].stop()
    app["sextant.executor"].shutdown(wait=False, cancel_futures=True)


def build_app(store: ResourceStore, *, token: str, data_dir: Path | None = None, registry: Registry | None = None,
              workers: int = 16, db_manager: grpc.Channel | None = None) -> web.Application:
    """The API server (and the web UI, if installed) over ``store``; every request but the
    health checks and the UI's public paths needs ``token``. ``db_manager``: the DB manager's
    channel, when ``store`` is its client (the UI reads observation logs through it)."""
    if registry is None:
        registry = Registry.load()
    app = web.Application(middlewares=[error_middleware, auth_middleware], client_max_size=8 * 1024 * 1024)
    with _string_keys():
        _set_keys(app, store, token, data_dir, registry, workers)
    if db_manager is not None:
        app[DB_MANAGER] = db_manager
    app.on_startup.append(_start_hub)
    app.on_shutdown.append(_end_watches)
    app.on_cleanup.append(_stop)
    _routes(app)
    if importlib.util.find_spec("services.web_ui") is not None:
        importlib.import_module("services.web_ui").setup(app)
    return app


@contextlib.contextmanager
def _string_keys() -> Iterator[None]:
    """The keys are plain strings by contract (the web UI, another package, reads them by name)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        yield


def _set_keys(app: web.Application, store: ResourceStore, token: str, data_dir: Path | None, registry: Registry,
              workers: int) -> None:
    app["sextant.store"] = store
    app["sextant.token"] = token
    app["sextant.data_dir"] = Path(data_dir) if data_dir else None
    app["sextant.public_prefixes"] = []
    app["sextant.registry"] = registry
    app["sextant.executor"] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="api-store")
    app["sextant.namespaces"] = namespaces.Namespaces(app["sextant.data_dir"])
    app["sextant.list_pages"] = paging.ListPages()
