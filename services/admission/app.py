"""The admission webhook server: Katib's webhook paths over HTTPS (the API server only calls
webhooks over TLS), plus health checks for the kubelet."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from services.admission import review
from sextant.algorithm_registry import Registry
from sextant.runtime.kubernetes_sidecar import SidecarSettings

log = logging.getLogger("sextant.admission")
Reviewer = Callable[[dict[str, Any], Registry | None], dict[str, Any]]
REGISTRY = web.AppKey("registry", Registry)


def _handler(reviewer: Reviewer) -> Callable[[web.Request], Any]:
    async def handle(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError as err:
            return web.json_response({"message": f"not an AdmissionReview: {err}"}, status=400)
        if not isinstance(body, dict) or body.get("kind") != "AdmissionReview":
            return web.json_response({"message": "not an AdmissionReview"}, status=400)
        answer = reviewer(body, request.app[REGISTRY])
        response = answer["response"]
        log.info("admission", extra={"path": request.path, "uid": response["uid"], "allowed": response["allowed"],
                                     "patched": "patch" in response})
        return web.json_response(answer)

    return handle


async def _healthy(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def build_app(registry: Registry | None = None,
              pods: tuple[review.TrialLookup, SidecarSettings] | None = None,
              namespace_labels: review.NamespaceLabels | None = None) -> web.Application:
    """``pods``: how to find a pod's Trial and what sidecar to add; without it ``/mutate-pod``
    lets every pod through unchanged (trials then need the wrapped-command mode).
    ``namespace_labels``: a namespace's labels; with it ``/validate-experiment`` refuses
    experiments in namespaces without the collector-injection label."""
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[REGISTRY] = registry or Registry.load()
    app.router.add_post("/mutate-experiment", _handler(review.mutate))
    app.router.add_post("/validate-experiment", _handler(
        lambda body, registry: review.validate(body, registry, namespace_labels)))
    if pods is not None:
        lookup, settings = pods
        app.router.add_post("/mutate-pod", _handler(lambda body, _registry: review.mutate_pod(body, lookup, settings)))
    else:
        app.router.add_post("/mutate-pod", _handler(lambda body, _registry: review.allow(body)))
    app.router.add_get("/healthz", _healthy)
    app.router.add_get("/readyz", _healthy)
    return app
